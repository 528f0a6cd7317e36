//! The command line (clap) and dispatch to the commands.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::commands;
use crate::ui::Ui;

/// Bring up a Python data-science workspace in one command.
#[derive(Debug, Parser)]
#[command(name = "labup", version, propagate_version = true)]
pub(crate) struct Cli {
    /// Only print errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Show the commands labup runs and their output.
    #[arg(short, long, global = true)]
    pub(crate) verbose: bool,
    /// Project folder (default: the nearest folder upwards with a labup.toml, else the current one).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) project: Option<PathBuf>,
    /// What to do (default: `up`).
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Sync, start the services under a supervisor, wait until they are ready, print their URLs.
    Up {
        /// Only these services (and what they start after).
        services: Vec<String>,
        /// Stay attached: every service's log on stdout; Ctrl-C stops everything.
        #[arg(long)]
        foreground: bool,
        /// Fail instead of resolving when the lock is missing or out of date.
        #[arg(long)]
        locked: bool,
        /// Print the status as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Do not open the browser (also: LABUP_NO_BROWSER=1).
        #[arg(long)]
        no_browser: bool,
        /// Print what would be synced and started; change nothing.
        #[arg(long, conflicts_with = "foreground")]
        dry_run: bool,
    },
    /// Stop services (all of them, and the supervisor, when none is named).
    #[command(alias = "down")]
    Stop {
        /// Services to stop.
        services: Vec<String>,
    },
    /// Stop and start services again.
    Restart {
        /// Services to restart (all when none is named).
        services: Vec<String>,
        /// Jupyter: make a new token first (the old URL stops working).
        #[arg(long)]
        new_token: bool,
    },
    /// Open a running service's URL in the browser again (Jupyter when none is named).
    Open {
        /// The service (default: the first Jupyter service).
        service: Option<String>,
    },
    /// Each service's state, pid, URL, uptime, restarts and last error.
    Status {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a service's log (all services' when none is named).
    Logs {
        /// The service.
        service: Option<String>,
        /// Keep printing new lines.
        #[arg(short, long)]
        follow: bool,
        /// Lines to show from the end.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
    },
    /// Check the interpreter, venv, wheel linkage, GPU, ports, WSL and Ollama; each with a fix.
    Doctor {
        /// Print the checks as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print shell completions (`labup completions bash > /etc/bash_completion.d/labup`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print shell code that activates the workspace: `eval "$(labup hook bash)"`.
    Hook {
        /// The shell.
        shell: crate::shell::Shell,
    },
    /// Write a commented labup.toml for this folder (and a flake.nix with --flake).
    Init {
        /// Also write a flake.nix that uses `labup.lib.mkFlake`.
        #[arg(long)]
        flake: bool,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Write the files an existing engine runs the workspace with (Kubernetes, Slurm, systemd).
    Export {
        /// The engine.
        #[command(subcommand)]
        target: crate::export::Target,
    },
    /// JupyterHub's per-user server, for `c.Spawner.cmd`: sync (with jupyterhub), then run the
    /// venv's `jupyterhub-singleuser` with the spawner's arguments in the workspace environment.
    JupyterhubSingleuser {
        /// The spawner's arguments, passed on unchanged.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
        args: Vec<OsString>,
    },
    /// What the hook's code calls on shell entry and exit (`[shell] autostart`).
    #[command(name = "__shell", hide = true)]
    Shell {
        /// What to do.
        #[command(subcommand)]
        action: commands::ShellAction,
    },
    /// Print the man page (roff), generated from this command line.
    #[command(name = "__man", hide = true)]
    Man,
    /// The detached supervisor (started by `labup up`).
    #[command(name = "__supervise", hide = true)]
    Supervise,
    /// Create the venv and make it exactly the lock (nothing to do: returns in milliseconds).
    Sync {
        /// Fail instead of resolving when the lock is missing or out of date (for CI).
        #[arg(long)]
        locked: bool,
        /// Print the result as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Print what a sync would do (venv, lock, packages); change nothing.
        #[arg(long, conflicts_with = "locked")]
        dry_run: bool,
    },
    /// (Re)write the lock file from the requirement sources.
    Lock {
        /// Take the newest allowed versions instead of keeping the current pins.
        #[arg(long)]
        upgrade: bool,
        /// Print the result as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Run a command with the workspace environment (syncs first).
    Run {
        /// Do not sync before running.
        #[arg(long)]
        no_sync: bool,
        /// The command and its arguments, after `--`.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
        command: Vec<OsString>,
    },
    /// The NVIDIA driver, its CUDA version, the GPUs, and the PyTorch wheel index labup picks.
    Gpu {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the environment labup gives the programs it starts.
    Env {
        /// Say why each variable and each path entry is there.
        #[arg(long)]
        explain: bool,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Words people try for a command labup spells otherwise (`labup start` → `up`).
const SYNONYMS: [(&str, &str); 6] =
    [("start", "up"), ("launch", "up"), ("serve", "up"), ("kill", "stop"), ("halt", "stop"), ("ps", "status")];

/// An unknown command that means one of ours gets that one first among clap's suggestions.
pub(crate) fn suggest_commands(mut err: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    if err.kind() != clap::error::ErrorKind::InvalidSubcommand {
        return err;
    }
    let Some(ContextValue::String(word)) = err.get(ContextKind::InvalidSubcommand).cloned() else { return err };
    let Some((_, ours)) = SYNONYMS.iter().find(|(w, _)| *w == word) else { return err };
    let mut list = vec![ours.to_string()];
    if let Some(ContextValue::Strings(similar)) = err.get(ContextKind::SuggestedSubcommand) {
        list.extend(similar.iter().filter(|s| s.as_str() != *ours).cloned());
    }
    err.insert(ContextKind::SuggestedSubcommand, ContextValue::Strings(list));
    err
}

/// Runs the parsed command line.
pub(crate) fn run(cli: Cli, ui: &Ui) -> Result<ExitCode> {
    let start = match &cli.project {
        Some(dir) => std::path::absolute(dir)?,
        None => std::env::current_dir()?,
    };
    // `--project sub/` is found like the current folder: the nearest `labup.toml` upwards.
    let root = crate::project::find_root(&start);
    let command = cli.command.unwrap_or(Command::Up {
        services: Vec::new(),
        foreground: false,
        locked: false,
        json: false,
        no_browser: false,
        dry_run: false,
    });
    // One rule for what a project is: the commands that build a workspace refuse other folders.
    if matches!(
        command,
        Command::Up { .. }
            | Command::Sync { .. }
            | Command::Lock { .. }
            | Command::Run { no_sync: false, .. }
            | Command::Restart { .. }
    ) {
        crate::project::require(&root)?;
    }
    match command {
        Command::Up { services, foreground, locked, json, no_browser, dry_run } => {
            let opts = commands::UpOptions { foreground, locked, json, no_browser, dry_run };
            commands::up(&root, &services, &opts, ui)
        }
        Command::Stop { services } => commands::stop(&root, &services, ui),
        Command::Restart { services, new_token } => commands::restart(&root, &services, new_token, ui),
        Command::Open { service } => commands::open(&root, service.as_deref(), ui),
        Command::Status { json } => commands::status(&root, json, ui),
        Command::Logs { service, follow, lines } => commands::show_logs(&root, service.as_deref(), follow, lines),
        Command::Supervise => commands::supervise(&root),
        Command::Doctor { json } => commands::doctor(&root, json),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "labup",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sync { dry_run: true, json, .. } => commands::sync_plan(&root, json),
        Command::Sync { locked, json, .. } => commands::sync(&root, locked, json, ui),
        Command::Lock { upgrade, json } => commands::lock(&root, upgrade, json, ui),
        Command::Run { no_sync, command } => commands::run(&root, !no_sync, &command, ui),
        Command::Env { explain, json } => commands::env(&root, explain, json, ui),
        Command::Gpu { json } => commands::gpu(&root, json, ui),
        Command::Hook { shell } => commands::hook(&root, cli.project.is_some(), shell),
        // A new labup.toml belongs where labup was asked, not in a project folder further up.
        Command::Init { flake, force } => commands::init(&start, flake, force, ui),
        Command::Shell { action } => commands::shell_action(&root, &action, ui),
        Command::Export { target } => commands::export(&root, &target, ui),
        Command::JupyterhubSingleuser { args } => commands::jupyterhub_singleuser(&root, &args, ui),
    }
}
