//! `labup export <target>`: load the workspace, build the target's files, write them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::config::Config;
use crate::error::{fail, Fail};
use crate::export::{output, slurm, systemd, Destination, Target};
use crate::project::Workspace;
use crate::ui::Ui;

/// `labup export`.
pub(crate) fn export(root: &Path, target: &Target, ui: &Ui) -> Result<ExitCode> {
    match target {
        Target::Kubernetes { image, namespace, workdir, expose, output } => {
            kubernetes(root, image.as_deref(), namespace.clone(), workdir, expose, output.as_deref(), ui)
        }
        Target::Slurm { gpus, time, partition, output } => {
            export_slurm(root, gpus.as_deref(), time.as_deref(), partition.as_deref(), output.as_deref(), ui)
        }
        Target::Systemd { user, output } => export_systemd(root, *user, output.as_deref(), ui),
    }
}

/// The running labup's absolute path: what the exported files start.
fn this_labup() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the path of the running labup")?;
    Ok(std::path::absolute(exe)?)
}

/// `labup export slurm`.
fn export_slurm(
    root: &Path,
    gpus: Option<&str>,
    time: Option<&str>,
    partition: Option<&str>,
    out: Option<&Path>,
    ui: &Ui,
) -> Result<ExitCode> {
    let opts = slurm::Options::parse(gpus, time, partition)?;
    let ws = Workspace::load(root)?;
    let config = &ws.config;
    let sources = crate::python::sources::Sources::detect(config)?;
    let gpus = slurm::gpus(config, &opts, crate::gpu::torch_requested(&sources));
    let output = ws.layout.slurm_output();
    let labup = this_labup()?;
    let job = slurm::Job {
        project: &config.project.name,
        root: &config.root,
        output: &output,
        labup: &labup,
        gpus,
        opts: &opts,
    };
    let file = slurm::script(&job);
    let dest = out.map_or(Destination::Stdout, |p| Destination::File(p.to_path_buf()));
    output::write(std::slice::from_ref(&file), &dest)?;
    // Slurm opens the job's output file before the script runs: its folder must exist already.
    ws.layout.ensure(ws.layout.logs())?;
    let (n, why) = &job.gpus;
    let gpu_words = if *n == 1 { "1 GPU".to_string() } else { format!("{n} GPUs") };
    let submit = out.map_or("sbatch FILE".to_string(), |p| format!("sbatch {}", p.display()));
    ui.info(format!(
        "the job asks for {gpu_words} ({why}); submit it with `{submit}`, its output goes to {}",
        output.display().to_string().replace("%j", "<job id>")
    ));
    Ok(ExitCode::SUCCESS)
}

/// `labup export systemd`.
fn export_systemd(root: &Path, user_unit: bool, out: Option<&Path>, ui: &Ui) -> Result<ExitCode> {
    let config = Config::load(root)?;
    let owner = if user_unit { None } else { Some(folder_owner(&config.root)?) };
    let stop_timeout = config.enabled_services().map(|s| s.stop_timeout).max().unwrap_or_default();
    let env = systemd::CARRIED.iter().filter_map(|k| crate::envvars::get(k).map(|v| (k.to_string(), v))).collect();
    let labup = this_labup()?;
    let unit = systemd::Unit {
        project: &config.project.name,
        root: &config.root,
        labup: &labup,
        user: owner.as_deref(),
        stop_timeout,
        env,
    };
    let file = systemd::unit(&unit);
    let dest = out.map_or(Destination::Stdout, |p| Destination::Dir(p.to_path_buf()));
    let written = output::write(std::slice::from_ref(&file), &dest)?;
    for path in written {
        ui.info(format!("wrote {}", path.display()));
    }
    if let Some(user) = &owner {
        ui.info(format!("the unit runs the workspace as {user}, the owner of {}", config.root.display()));
    }
    Ok(ExitCode::SUCCESS)
}

/// The name of the user who owns the project folder: a system unit runs the workspace as them.
fn folder_owner(root: &Path) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(root).with_context(|| format!("cannot read {}", root.display()))?.uid();
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => Ok(u.name),
        _ => fail(
            Fail::usage(format!("{} belongs to uid {uid}, which has no user name", root.display()))
                .hint("give the folder to the user who should run the workspace, or use `--user`"),
        ),
    }
}

/// `labup export kubernetes`: the manifests on stdout, or one file per object in `-o DIR`. The
/// Jupyter token is made here, for the Secret only (never the workstation's own token).
fn kubernetes(
    root: &Path,
    image: Option<&str>,
    namespace: Option<String>,
    workdir: &str,
    expose: &[String],
    output: Option<&Path>,
    ui: &Ui,
) -> Result<ExitCode> {
    use crate::export::kubernetes;
    let config = Config::load(root)?;
    let image = match image {
        Some(i) => i.to_string(),
        None => {
            let name: String = config
                .project
                .name
                .to_lowercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            let image = format!("labup-{}:latest", name.trim_matches('-'));
            ui.info(format!("image: {image} (`--image` names the image that holds labup and the project)"));
            image
        }
    };
    let opts = kubernetes::Options { image, namespace, workdir: workdir.to_string(), expose: expose.to_vec() };
    let token = new_token()?;
    let files = kubernetes::manifests(&config, &opts, &token)?;
    let dest = output.map_or(Destination::Stdout, |d| Destination::Dir(d.to_path_buf()));
    for path in output::write(&files, &dest)? {
        ui.info(format!("wrote {}", path.display()));
    }
    if output.is_some() {
        ui.info("apply with `kubectl apply -f DIR`; the Secret holds a new Jupyter token at every export");
    }
    Ok(ExitCode::SUCCESS)
}

/// 24 random bytes as hex, from the kernel.
fn new_token() -> Result<String> {
    use std::io::Read;
    let mut buf = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| Fail::new(format!("failed to read random bytes from /dev/urandom: {e}")))?;
    Ok(crate::python::lockfile::hex(&buf))
}
