//! `labup export slurm` against a real single-node Slurm (`engine_slurm_*`, set up by
//! `.ci/setup.d/50-slurm.sh`: slurmctld, slurmd, munge, one fake GPU), and its bad input
//! (no Slurm needed).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::support::{http_get, wait_until, Project};

/// A service on an automatic port, so the job's output must name the port for the test to find it.
const WEB: &str = "[services.web]\ncommand = [\"python3\", \"-m\", \"http.server\", \"$PORT\", \"--bind\", \"127.0.0.1\"]\nport = \"auto\"\n";

/// A command with the project's environment (the job inherits the submitter's, as on a cluster).
fn with_env(p: &Project, program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(p.root());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LABUP_")) {
        cmd.env_remove(k);
    }
    cmd.envs(&p.env);
    cmd
}

fn need_slurm() {
    let up = Command::new("sinfo").args(["-h", "-o", "%T"]).output();
    let ok = up.as_ref().is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    assert!(ok, "these tests need the single-node Slurm of .ci/setup.d/50-slurm.sh (run it as root): {up:?}");
}

/// Cancels the job when the test ends, passed or not.
struct Job(String);

impl Drop for Job {
    fn drop(&mut self) {
        let _ = Command::new("scancel").arg(&self.0).status();
    }
}

fn job_state(id: &str) -> String {
    let out = Command::new("squeue").args(["-h", "-j", id, "-o", "%T"]).output().expect("squeue");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Processes whose working folder or command line is in `root` (from /proc, not from labup).
fn processes_in(root: &Path) -> Vec<(i32, String)> {
    let root = root.canonicalize().unwrap();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let cwd = std::fs::read_link(entry.path().join("cwd")).ok();
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z'));
        if !zombie && (cwd.is_some_and(|c| c.starts_with(&root)) || cmdline.contains(&*root.to_string_lossy())) {
            out.push((pid, cmdline));
        }
    }
    out
}

#[test]
fn engine_slurm_job_serves_names_its_port_and_scancel_leaves_nothing() {
    need_slurm();
    let p = Project::new();
    p.file("labup.toml", WEB);
    p.labup(&["export", "slurm", "--time", "10", "-o", "job.sbatch"]).ok().stderr_has("asks for 0 GPUs");
    let started = Instant::now();
    let out = with_env(&p, "sbatch").args(["--parsable", "job.sbatch"]).output().unwrap();
    assert!(out.status.success(), "sbatch: {}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8_lossy(&out.stdout).trim().split(';').next().unwrap().to_string();
    let job = Job(id.clone());
    let log = p.path(&format!(".labup/logs/slurm-{id}.out"));
    let port_re = regex::Regex::new(r"(?m)^  web  port (\d+)  http://127\.0\.0\.1:(\d+)/$").unwrap();
    let mut port = None;
    let announced = wait_until(90, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        port = port_re.captures(&text).map(|c| c[1].parse::<u16>().unwrap());
        port.is_some()
    });
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(announced, "the job's output never named the port (job {}):\n{text}", job_state(&id));
    let port = port.unwrap();
    assert_eq!(http_get(&format!("http://127.0.0.1:{port}/")), Some(200), "{text}");
    let answered = started.elapsed();
    eprintln!("measured: sbatch to the service answering: {} ms", answered.as_millis());
    assert_eq!(job_state(&id), "RUNNING");
    let node = String::from_utf8_lossy(&Command::new("hostname").arg("-s").output().unwrap().stdout).trim().to_string();
    assert!(text.contains(&format!("Slurm job {id} is serving on node {node}")), "{text}");
    assert!(text.contains(&format!("ssh -N -J {node} -L {port}:127.0.0.1:{port} {node}")), "{text}");

    let before = processes_in(p.root());
    assert!(before.iter().any(|(_, c)| c.contains("up --foreground")), "labup runs in the job: {before:?}");
    assert!(before.iter().any(|(_, c)| c.contains("http.server")), "the service runs in the job: {before:?}");
    let cancelled = Instant::now();
    assert!(Command::new("scancel").arg(&id).status().unwrap().success());
    assert!(wait_until(30, || processes_in(p.root()).is_empty()), "left after scancel: {:?}", processes_in(p.root()));
    eprintln!("measured: scancel to no process left: {} ms", cancelled.elapsed().as_millis());
    assert!(wait_until(30, || job_state(&id).is_empty()), "job still listed: {}", job_state(&id));
    assert_ne!(http_get(&format!("http://127.0.0.1:{port}/")), Some(200));
    drop(job);
}

#[test]
fn engine_slurm_refuses_more_gpus_than_exist_and_the_export_says_how_many() {
    need_slurm();
    let p = Project::new();
    p.file("labup.toml", WEB);
    let out = p.labup(&["export", "slurm", "--gpus", "2", "-o", "two.sbatch"]).ok().stderr_has("asks for 2 GPUs");
    assert!(out.stderr.contains("from `--gpus`"), "{}", out.stderr);
    let script = std::fs::read_to_string(p.path("two.sbatch")).unwrap();
    assert!(script.lines().any(|l| l == "#SBATCH --gres=gpu:2"), "{script}");
    let refused = with_env(&p, "sbatch").args(["--parsable", "two.sbatch"]).output().unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "the node has one GPU: sbatch must refuse two");
    assert!(err.contains("Requested node configuration is not available"), "{err}");
    // One GPU (the node's fake one) is fine: checked without running it.
    p.file("labup.toml", &format!("[gpu]\ncuda = \"on\"\n{WEB}"));
    p.labup(&["export", "slurm", "-o", "one.sbatch"]).ok().stderr_has("asks for 1 GPU (`[gpu] cuda = \"on\"`)");
    let one = with_env(&p, "sbatch").args(["--test-only", "one.sbatch"]).output().unwrap();
    assert!(one.status.success(), "{}", String::from_utf8_lossy(&one.stderr));
}

#[test]
fn engine_slurm_time_limits_labup_takes_are_the_ones_sbatch_takes() {
    need_slurm();
    let p = Project::new();
    p.file("labup.toml", WEB);
    let cases = [
        "30",
        "0",
        "30:15",
        "4:00:00",
        "1-00:00:00",
        "1-12",
        "1-12:30",
        "2-1:2:3",
        "INFINITE",
        "unlimited",
        "1-",
        "0:75",
        "1:2:3:4",
        "1-2-3",
        "abc",
        "1h",
        ":30",
        "30:",
        "1::2",
        "5.5",
        "1-:30",
        "-5",
        "-",
        "-:30",
        "--5",
        "-1-2",
        "-0",
        "1-5:",
        "1-5::1",
        "1-1:2:3:4",
        "00",
        "-1:30",
        "1:2-3",
        "-1:2:3",
        "1-2:3:4",
        "1-2:",
        ":1:2",
        "1:2:",
        "0-0",
    ];
    for time in cases {
        let labup = p.labup(&["export", "slurm", &format!("--time={time}")]);
        let sbatch = with_env(&p, "sbatch").args(["--test-only", &format!("--time={time}"), "--wrap", "true"]).output();
        let sbatch = sbatch.unwrap();
        assert_eq!(
            labup.code == 0,
            sbatch.status.success(),
            "--time={time}: labup exit {}, sbatch: {}",
            labup.code,
            String::from_utf8_lossy(&sbatch.stderr)
        );
        if labup.code != 0 {
            assert_eq!(labup.code, 2, "{}", labup.stderr);
        }
    }
}

#[test]
fn export_slurm_bad_input_is_refused_and_writes_nothing() {
    let p = Project::new();
    p.file("labup.toml", WEB);
    p.file("mine.sh", "#!/bin/sh\necho mine\n");
    let before = p.listing();
    for (args, says) in [
        (vec!["--gpus", "0"], "`--gpus 0` is not a positive number"),
        (vec!["--gpus", "two"], "`--gpus two` is not a positive number"),
        (vec!["--time", "4h"], "`--time 4h` is not a time limit sbatch accepts"),
        (vec!["-o", "mine.sh"], "exists and labup did not export it"),
        (vec!["-o", "."], "exists and labup did not export it"),
    ] {
        let mut all = vec!["export", "slurm"];
        all.extend(args);
        p.labup(&all).code(2).stderr_has(says);
        assert_eq!(p.listing(), before, "{all:?} wrote something");
    }
    assert_eq!(std::fs::read_to_string(p.path("mine.sh")).unwrap(), "#!/bin/sh\necho mine\n");
    // Its own script is replaced.
    p.labup(&["export", "slurm", "-o", "job.sbatch"]).ok();
    p.labup(&["export", "slurm", "--time", "5", "-o", "job.sbatch"]).ok();
    assert!(std::fs::read_to_string(p.path("job.sbatch")).unwrap().contains("#SBATCH --time=5\n"));
}
