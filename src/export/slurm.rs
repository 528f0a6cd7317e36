//! `labup export slurm`: an sbatch script that runs the workspace as a Slurm job, and the
//! "where to reach it" block `labup up --foreground` prints in the job's output.
//!
//! The job changes into the project and `exec`s `labup up --foreground --no-browser`, so the
//! signal Slurm sends on `scancel` or at the time limit reaches labup itself, which stops every
//! service's process group (and Slurm's cgroup takes whatever is left after `KillWait`).
//! Everything here is pure: the script and the block are built from values and unit-tested.

use std::collections::BTreeMap;
use std::path::Path;

use super::{File, MARKER};
use crate::config::{Config, Cuda};
use crate::envvars;
use crate::error::Fail;

/// The validated `labup export slurm` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Options {
    /// `--gpus`: overrides what `[gpu]` asks for.
    pub(crate) gpus: Option<u32>,
    /// `--time`, as given (validated).
    pub(crate) time: Option<String>,
    /// `--partition`.
    pub(crate) partition: Option<String>,
}

impl Options {
    /// Checks the command line's values; a bad one is a usage error (exit 2, nothing written).
    pub(crate) fn parse(gpus: Option<&str>, time: Option<&str>, partition: Option<&str>) -> Result<Options, Fail> {
        let gpus = gpus.map(parse_gpus).transpose()?;
        let time = time.map(|t| check_time(t).map(|()| t.to_string())).transpose()?;
        let partition = match partition {
            Some(p) if p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || "_-.,".contains(c)) => {
                return Err(Fail::usage(format!("`--partition {p}` is not a partition name"))
                    .hint("list the partitions with `sinfo -s`; several are separated by commas"));
            }
            p => p.map(str::to_string),
        };
        Ok(Options { gpus, time, partition })
    }
}

/// `--gpus N`: a positive whole number.
fn parse_gpus(text: &str) -> Result<u32, Fail> {
    match text.parse::<u32>() {
        Ok(n) if n > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(Fail::usage(format!("`--gpus {text}` is not a positive number of GPUs"))
            .hint("give a whole number such as `--gpus 1`, or leave it out to take it from `[gpu]`")),
    }
}

/// `--time` in one of the forms sbatch accepts: `minutes`, `minutes:seconds`,
/// `hours:minutes:seconds`, `days-hours`, `days-hours:minutes`, `days-hours:minutes:seconds`,
/// or `INFINITE`/`UNLIMITED`/`-1`. The rule is Slurm's own (`_is_valid_timespec` in
/// `parse_time.c`): digits, at most one `-` and before any `:`, at most two `:`, and enough
/// digit groups for the colons; sbatch does not range-check the numbers (`0:75` is 75 s), and
/// takes an empty day count (`-5`) or a bare one (`1-`).
pub(crate) fn check_time(text: &str) -> Result<(), Fail> {
    if valid_time(text) {
        return Ok(());
    }
    Err(Fail::usage(format!("`--time {text}` is not a time limit sbatch accepts"))
        .hint("use minutes (`90`), `HH:MM:SS` (`4:00:00`), `D-HH` or `D-HH:MM:SS` (`1-12:00:00`), or `INFINITE`"))
}

fn valid_time(text: &str) -> bool {
    if ["infinite", "unlimited"].contains(&text.to_ascii_lowercase().as_str()) || text == "-1" {
        return true;
    }
    let (mut groups, mut dashes, mut colons, mut in_digits) = (0, 0, 0, false);
    for c in text.chars() {
        match c {
            '0'..='9' => {
                if !in_digits {
                    groups += 1;
                    in_digits = true;
                }
            }
            '-' if colons == 0 => {
                dashes += 1;
                in_digits = false;
            }
            ':' => {
                colons += 1;
                in_digits = false;
            }
            _ => return false,
        }
    }
    let needed = colons + 1 + dashes.min(1);
    groups > 0 && dashes <= 1 && colons <= 2 && (colons == 0 || groups >= needed)
}

/// How many GPUs the job asks for, and why (a comment in the script).
pub(crate) fn gpus(config: &Config, opts: &Options, torch_requested: bool) -> (u32, String) {
    if let Some(n) = opts.gpus {
        return (n, "from `--gpus`".into());
    }
    match config.gpu.cuda {
        Cuda::On => (1, "`[gpu] cuda = \"on\"`".into()),
        Cuda::Off => (0, "`[gpu] cuda = \"off\"`".into()),
        Cuda::Auto if torch_requested || config.python.torch.starts_with("cu") => {
            (1, "`[gpu] cuda = \"auto\"` and the requirements name torch".into())
        }
        Cuda::Auto => (0, "`[gpu] cuda = \"auto\"` and nothing in the requirements needs a GPU (torch)".into()),
    }
}

/// A word for a POSIX shell: single-quoted unless it is plainly safe.
pub(crate) fn shell_quote(text: &str) -> String {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+:=@%,".contains(&b)) {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A value on an `#SBATCH` line: sbatch splits those lines on blanks unless double-quoted.
fn sbatch_word(text: &str) -> String {
    if text.contains(char::is_whitespace) {
        format!("\"{text}\"")
    } else {
        text.to_string()
    }
}

/// A Slurm job name from the project name: letters, digits, `_.-` (others become `-`).
fn job_name(project: &str) -> String {
    let name: String =
        project.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' }).collect();
    format!("labup-{name}")
}

/// Everything the script is made from.
#[derive(Debug, Clone)]
pub(crate) struct Job<'a> {
    /// The project name (`[project] name`).
    pub(crate) project: &'a str,
    /// The project folder (absolute).
    pub(crate) root: &'a Path,
    /// The job's output file (absolute, `%j` the job id): in the workspace's log folder.
    pub(crate) output: &'a Path,
    /// The labup binary that wrote the script (absolute).
    pub(crate) labup: &'a Path,
    /// GPUs, with the reason.
    pub(crate) gpus: (u32, String),
    /// The options.
    pub(crate) opts: &'a Options,
}

/// The sbatch script.
pub(crate) fn script(job: &Job) -> File {
    let root = job.root.display().to_string();
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!("# {MARKER} for the project `{}`: submit it with `sbatch`.\n", job.project));
    s.push_str("# The job syncs the venv on the compute node, wires that node's GPU and runs the services;\n");
    s.push_str("# once they are ready its output says where they are and how to tunnel to them.\n");
    s.push_str(&format!("#SBATCH --job-name={}\n", job_name(job.project)));
    s.push_str(&format!("#SBATCH --chdir={}\n", sbatch_word(&root)));
    s.push_str(&format!("#SBATCH --output={}\n", sbatch_word(&job.output.display().to_string())));
    let (n, why) = &job.gpus;
    if *n > 0 {
        s.push_str(&format!("#SBATCH --gres=gpu:{n}\n"));
    }
    if let Some(t) = &job.opts.time {
        s.push_str(&format!("#SBATCH --time={t}\n"));
    }
    if let Some(p) = &job.opts.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    s.push_str(&format!("# GPUs: {n}, {why}.\n"));
    s.push_str("set -eu\n");
    s.push_str(&format!("labup={}\n", shell_quote(&job.labup.display().to_string())));
    s.push_str("# The labup that wrote this script, else the one on the job's PATH.\n");
    s.push_str("if ! [ -x \"$labup\" ]; then\n");
    s.push_str("  labup=$(command -v labup) || { echo \"labup is not installed on $(hostname)\" >&2; exit 1; }\n");
    s.push_str("fi\n");
    s.push_str(&format!("cd {}\n", shell_quote(&root)));
    s.push_str("# exec: the signal of scancel (or of the time limit) goes to labup, which stops every service.\n");
    s.push_str(&format!("exec \"$labup\" --project {} up --foreground --no-browser\n", shell_quote(&root)));
    File { name: format!("{}.sbatch", job_name(job.project)), text: s }
}

/// One ready service, for [`reach`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reachable {
    /// The service's name.
    pub(crate) name: String,
    /// Its port on the node.
    pub(crate) port: u16,
    /// The URL on the node (`http://127.0.0.1:PORT/…`, Jupyter's with its token).
    pub(crate) url: Option<String>,
}

/// The "where to reach it" block of a Slurm job, from the job's environment
/// (`SLURM_JOB_ID`, `SLURMD_NODENAME`, `SLURM_SUBMIT_HOST`) and the ready services; `None`
/// outside Slurm or with no service that listens.
///
/// The services listen on the node's 127.0.0.1, so the tunnel jumps through the login node to
/// the compute node and forwards to its loopback (`ssh -N -J LOGIN -L PORT:127.0.0.1:PORT NODE`):
/// the local port is the node's, so the URLs work unchanged on the user's machine.
pub(crate) fn reach(env: &BTreeMap<String, String>, services: &[Reachable]) -> Option<String> {
    let get = |k: &str| env.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let job = get(envvars::SLURM_JOB_ID)?;
    if services.is_empty() {
        return None;
    }
    let node = get(envvars::SLURMD_NODENAME).unwrap_or("NODE");
    let login = get(envvars::SLURM_SUBMIT_HOST).unwrap_or("LOGIN-NODE");
    let width = services.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut out = format!("labup: Slurm job {job} is serving on node {node}:\n");
    for s in services {
        let url = s.url.as_deref().map(|u| format!("  {u}")).unwrap_or_default();
        out.push_str(&format!("  {:width$}  port {}{url}\n", s.name, s.port));
    }
    let forwards: Vec<String> = services.iter().map(|s| format!("-L {0}:127.0.0.1:{0}", s.port)).collect();
    out.push_str(&format!("From your machine (through the login node {login} you submitted from):\n"));
    out.push_str(&format!("  ssh -N -J {login} {} {node}\n", forwards.join(" ")));
    out.push_str("then open the URLs above on your machine. `scancel ");
    out.push_str(job);
    out.push_str("` stops everything.\n");
    Some(out)
}

/// [`reach`] for the running foreground supervisor: this process's environment and the ready
/// services in `state`.
pub(crate) fn reach_now(state: &crate::services::state::RunState) -> Option<String> {
    let env: BTreeMap<String, String> = [envvars::SLURM_JOB_ID, envvars::SLURMD_NODENAME, envvars::SLURM_SUBMIT_HOST]
        .iter()
        .filter_map(|k| envvars::get(k).map(|v| (k.to_string(), v)))
        .collect();
    let services: Vec<Reachable> = state
        .services
        .iter()
        .filter_map(|(name, r)| Some(Reachable { name: name.clone(), port: r.port?, url: r.url() }))
        .collect();
    reach(&env, &services)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_limits_in_every_form_sbatch_takes() {
        for ok in ["30", "0", "30:15", "4:00:00", "1-00:00:00", "1-12", "1-12:30", "2-1:2:3", "INFINITE", "unlimited"] {
            assert!(check_time(ok).is_ok(), "{ok}");
        }
        for ok in ["-1", "1-", "0:75", "99999999", "-5", "0-0", "1-2:3:4"] {
            assert!(check_time(ok).is_ok(), "{ok} (sbatch accepts it)");
        }
        for bad in
            ["", "1:2:3:4", "1-2-3", "abc", "1h", ":30", "30:", "1::2", " 5", "5.5", "-", "1-:30", "-1:30", "1:2-3"]
        {
            let err = check_time(bad).unwrap_err();
            assert_eq!(err.exit, crate::error::Exit::Usage, "{bad}");
            assert!(err.message.contains(&format!("`--time {bad}`")), "{}", err.message);
        }
    }

    #[test]
    fn gpus_must_be_a_positive_number() {
        assert_eq!(parse_gpus("2").unwrap(), 2);
        for bad in ["0", "-1", "two", "1.5", "+1", ""] {
            assert!(parse_gpus(bad).unwrap_err().message.contains("not a positive number"), "{bad}");
        }
    }

    #[test]
    fn partition_names_are_checked() {
        assert_eq!(Options::parse(None, None, Some("gpu,debug")).unwrap().partition.as_deref(), Some("gpu,debug"));
        assert!(Options::parse(None, None, Some("gpu; rm -rf /")).is_err());
        assert!(Options::parse(None, None, Some("")).is_err());
    }

    fn config(toml: &str) -> Config {
        crate::config::for_test(toml).1
    }

    #[test]
    fn gpus_come_from_the_option_then_gpu_section() {
        let opts = Options::default();
        assert_eq!(gpus(&config("[gpu]\ncuda = \"on\"\n"), &opts, false).0, 1);
        assert_eq!(gpus(&config("[gpu]\ncuda = \"off\"\n"), &opts, true).0, 0);
        assert_eq!(gpus(&config(""), &opts, true).0, 1, "auto with torch");
        assert_eq!(gpus(&config(""), &opts, false).0, 0, "auto without torch");
        let two = Options { gpus: Some(2), ..Options::default() };
        assert_eq!(gpus(&config("[gpu]\ncuda = \"off\"\n"), &two, false), (2, "from `--gpus`".to_string()));
    }

    fn job_script(opts: &Options, gpus: u32) -> String {
        let job = Job {
            project: "my demo",
            root: Path::new("/home/ana/my demo"),
            output: Path::new("/home/ana/my demo/.labup/logs/slurm-%j.out"),
            labup: Path::new("/opt/labup/bin/labup"),
            gpus: (gpus, "from `--gpus`".into()),
            opts,
        };
        let f = script(&job);
        assert_eq!(f.name, "labup-my-demo.sbatch");
        f.text
    }

    #[test]
    fn script_has_sbatch_lines_and_execs_labup_in_the_project() {
        let opts = Options { gpus: Some(2), time: Some("4:00:00".into()), partition: Some("gpu".into()) };
        let text = job_script(&opts, 2);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "#!/bin/bash");
        assert!(lines[1].contains(MARKER), "the marker is on line 2: {}", lines[1]);
        for want in [
            "#SBATCH --job-name=labup-my-demo",
            "#SBATCH --output=\"/home/ana/my demo/.labup/logs/slurm-%j.out\"",
            "#SBATCH --chdir=\"/home/ana/my demo\"",
            "#SBATCH --gres=gpu:2",
            "#SBATCH --time=4:00:00",
            "#SBATCH --partition=gpu",
            "labup=/opt/labup/bin/labup",
            "cd '/home/ana/my demo'",
            "exec \"$labup\" --project '/home/ana/my demo' up --foreground --no-browser",
        ] {
            assert!(lines.contains(&want), "missing {want:?} in:\n{text}");
        }
        // sbatch reads #SBATCH lines only before the first command.
        let first_command = lines.iter().position(|l| !l.starts_with('#')).unwrap();
        assert!(lines.iter().skip(first_command).all(|l| !l.starts_with("#SBATCH")), "{text}");
    }

    #[test]
    fn no_gpu_no_time_no_partition_lines() {
        let text = job_script(&Options::default(), 0);
        assert!(!text.contains("--gres") && !text.contains("--time") && !text.contains("--partition"), "{text}");
        assert!(text.contains("# GPUs: 0, "), "{text}");
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(shell_quote("/a/b"), "/a/b");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn reach_block_names_node_ports_token_url_and_the_tunnel() {
        let env = env(&[("SLURM_JOB_ID", "42"), ("SLURMD_NODENAME", "gpu07"), ("SLURM_SUBMIT_HOST", "login1")]);
        let services = [
            Reachable { name: "app".into(), port: 5001, url: Some("http://127.0.0.1:5001/".into()) },
            Reachable { name: "jupyter".into(), port: 8888, url: Some("http://127.0.0.1:8888/lab?token=abc".into()) },
        ];
        let block = reach(&env, &services).unwrap();
        assert!(block.contains("job 42 is serving on node gpu07"), "{block}");
        assert!(block.contains("port 8888  http://127.0.0.1:8888/lab?token=abc"), "{block}");
        assert!(block.contains("ssh -N -J login1 -L 5001:127.0.0.1:5001 -L 8888:127.0.0.1:8888 gpu07"), "{block}");
        assert!(block.contains("scancel 42"), "{block}");
    }

    #[test]
    fn no_block_outside_slurm_or_without_ports() {
        let svc = [Reachable { name: "app".into(), port: 1, url: None }];
        assert_eq!(reach(&env(&[("SLURMD_NODENAME", "n")]), &svc), None);
        assert_eq!(reach(&env(&[("SLURM_JOB_ID", "")]), &svc), None);
        assert_eq!(reach(&env(&[("SLURM_JOB_ID", "1")]), &[]), None);
        let block = reach(&env(&[("SLURM_JOB_ID", "1")]), &svc).unwrap();
        assert!(block.contains("ssh -N -J LOGIN-NODE -L 1:127.0.0.1:1 NODE"), "{block}");
    }
}
