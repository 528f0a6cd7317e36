//! The code `labup hook` prints: pure text generation from an [`Activation`], one dialect per shell.
//!
//! It follows what `python -m venv`'s activate scripts do (users know that behaviour): save the
//! variables it changes, prefix the prompt unless `VIRTUAL_ENV_DISABLE_PROMPT` is set, and define
//! `deactivate`, which restores every saved variable exactly (unset stays unset) and accepts
//! `nondestructive` (keep the function), so a second activation first undoes the previous one.
//! No `LD_LIBRARY_PATH` is exported: see [`super::wrappers`] for why and what replaces it.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::{fish_quote, sh_quote, Shell};

/// What the activation code does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Activation {
    /// The project folder (passed to the autostart subcommands: the shell may `cd` away).
    pub(crate) root: PathBuf,
    /// The venv folder.
    pub(crate) venv: PathBuf,
    /// The interpreter wrappers folder, put first on PATH when the workspace needs libraries.
    pub(crate) wrappers: Option<PathBuf>,
    /// The folder of the `pip` that acts on the venv, put right after the venv's `bin`.
    pub(crate) pip: Option<PathBuf>,
    /// The prompt marker's name (already reduced to harmless characters).
    pub(crate) prompt: String,
    /// With `[shell] autostart`: how to call labup on entry and exit.
    pub(crate) autostart: Option<String>,
}

/// Reduces a project name to characters no prompt language expands (`$`, `%`, `\`, backticks).
pub(crate) fn prompt_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '@') { c } else { '_' })
        .collect();
    if clean.is_empty() {
        "labup".into()
    } else {
        clean
    }
}

/// The activation code for `shell`.
pub(crate) fn render(a: &Activation, shell: Shell) -> String {
    match shell {
        Shell::Bash | Shell::Zsh => posix(a, shell),
        Shell::Fish => fish(a),
    }
}

/// The `PATH` entries put in front, in order.
fn front(a: &Activation) -> Vec<String> {
    let mut dirs: Vec<String> = a.wrappers.iter().map(|w| w.display().to_string()).collect();
    dirs.push(a.venv.join("bin").display().to_string());
    dirs.extend(a.pip.iter().map(|p| p.display().to_string()));
    dirs
}

/// Saved and restored like `VIRTUAL_ENV` (PATH and the prompt are handled on their own).
const SAVED: [&str; 3] = ["VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT", "PYTHONHOME"];

fn posix(a: &Activation, shell: Shell) -> String {
    let q = sh_quote;
    let mut s = String::new();
    let venv = a.venv.display().to_string();
    let _ = writeln!(s, "# labup hook {}: activates {venv}; `deactivate` undoes it.", shell_name(shell));
    // Only a function: pyenv-virtualenv puts a `deactivate` command on PATH that must not run.
    s.push_str("if typeset -f deactivate >/dev/null 2>&1; then deactivate nondestructive; fi\n");
    s.push_str("deactivate () {\n");
    s.push_str("    if [ -n \"${_LABUP_OLD_PATH+x}\" ]; then PATH=\"$_LABUP_OLD_PATH\"; export PATH; unset _LABUP_OLD_PATH; fi\n");
    for var in SAVED {
        // PYTHONHOME was only removed: when it was not set before, there is nothing to undo.
        let otherwise = if var == "PYTHONHOME" { String::new() } else { format!(" else unset {var};") };
        let _ = writeln!(
            s,
            "    if [ -n \"${{_LABUP_OLD_{var}+x}}\" ]; then {var}=\"$_LABUP_OLD_{var}\"; export {var}; \
             unset _LABUP_OLD_{var};{otherwise} fi"
        );
    }
    s.push_str("    if [ -n \"${_LABUP_PROMPT+x}\" ]; then\n");
    s.push_str("        if [ -n \"${_LABUP_OLD_PS1+x}\" ]; then PS1=\"$_LABUP_OLD_PS1\"; unset _LABUP_OLD_PS1; else unset PS1; fi\n");
    s.push_str("        unset _LABUP_PROMPT\n    fi\n");
    s.push_str("    hash -r 2>/dev/null\n");
    s.push_str("    if [ \"${1-}\" != nondestructive ]; then unset -f deactivate; fi\n}\n");
    // Before the activation: services started on entry get the shell's own environment.
    if let Some(labup) = &a.autostart {
        posix_autostart(&mut s, a, labup, shell);
    }
    s.push_str("_LABUP_OLD_PATH=\"${PATH-}\"\n");
    let front = front(a).iter().map(|d| q(d)).collect::<Vec<_>>().join(":");
    let _ = writeln!(s, "PATH={front}\"${{PATH:+:$PATH}}\"; export PATH");
    for var in SAVED {
        let _ = writeln!(s, "unset _LABUP_OLD_{var}; if [ -n \"${{{var}+x}}\" ]; then _LABUP_OLD_{var}=\"${var}\"; fi");
    }
    let _ = writeln!(s, "VIRTUAL_ENV={}; export VIRTUAL_ENV", q(&venv));
    let _ = writeln!(s, "VIRTUAL_ENV_PROMPT={}; export VIRTUAL_ENV_PROMPT", q(&a.prompt));
    s.push_str("unset PYTHONHOME\n");
    s.push_str("if [ -z \"${VIRTUAL_ENV_DISABLE_PROMPT-}\" ]; then\n");
    s.push_str("    _LABUP_PROMPT=1\n");
    s.push_str("    unset _LABUP_OLD_PS1; if [ -n \"${PS1+x}\" ]; then _LABUP_OLD_PS1=\"$PS1\"; fi\n");
    let _ = writeln!(s, "    PS1={}\"${{PS1-}}\"", q(&format!("({}) ", a.prompt)));
    s.push_str("fi\n");
    s.push_str("hash -r 2>/dev/null\n");
    s
}

/// Registers the shell once per shell process and arranges the leave call on exit.
fn posix_autostart(s: &mut String, a: &Activation, labup: &str, shell: Shell) {
    let root = sh_quote(&a.root.display().to_string());
    s.push_str("if [ \"${_LABUP_SHELL_PID-}\" != \"$$\" ]; then\n");
    s.push_str("    _LABUP_SHELL_PID=$$\n");
    let _ =
        writeln!(s, "    _labup_leave () {{ {labup} __shell leave --pid \"$_LABUP_SHELL_PID\" --project {root}; }}");
    match shell {
        Shell::Zsh => {
            s.push_str("    autoload -Uz add-zsh-hook\n");
            s.push_str("    add-zsh-hook zshexit _labup_leave\n");
        }
        _ => {
            // Keep an EXIT trap that was already set (nix develop, the user's rc files) running after ours.
            s.push_str("    _labup_exit_trap () { eval \"set -- $(trap -p EXIT)\"; printf '%s' \"${3-}\"; }\n");
            s.push_str("    _LABUP_PREV_EXIT_TRAP=$(_labup_exit_trap)\n");
            s.push_str("    unset -f _labup_exit_trap\n");
            s.push_str("    trap '_labup_leave; eval \"$_LABUP_PREV_EXIT_TRAP\"' EXIT\n");
        }
    }
    let _ = writeln!(s, "    {labup} __shell enter --pid $$ --project {root}");
    s.push_str("fi\n");
}

fn shell_name(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => "bash",
        Shell::Zsh => "zsh",
        Shell::Fish => "fish",
    }
}

fn fish(a: &Activation) -> String {
    let q = fish_quote;
    let mut s = String::new();
    let venv = a.venv.display().to_string();
    let _ = writeln!(s, "# labup hook fish: activates {venv}; `deactivate` undoes it.");
    s.push_str("if functions -q deactivate; deactivate nondestructive; end\n");
    s.push_str("function deactivate --description 'leave the labup workspace'\n");
    s.push_str("    if set -q _LABUP_OLD_PATH; set -gx PATH $_LABUP_OLD_PATH; set -e _LABUP_OLD_PATH; end\n");
    for var in SAVED {
        let otherwise = if var == "PYTHONHOME" { String::new() } else { format!(" else; set -e {var};") };
        let _ = writeln!(
            s,
            "    if set -q _LABUP_OLD_{var}; set -gx {var} $_LABUP_OLD_{var}; set -e _LABUP_OLD_{var};{otherwise} end"
        );
    }
    s.push_str("    if functions -q _labup_old_fish_prompt\n");
    s.push_str("        functions -e fish_prompt\n");
    s.push_str("        functions -c _labup_old_fish_prompt fish_prompt\n");
    s.push_str("        functions -e _labup_old_fish_prompt\n");
    s.push_str("    end\n");
    s.push_str("    if test \"$argv[1]\" != nondestructive; functions -e deactivate; end\nend\n");
    if let Some(labup) = &a.autostart {
        let root = q(&a.root.display().to_string());
        s.push_str("if test \"$_LABUP_SHELL_PID\" != \"$fish_pid\"\n");
        s.push_str("    set -g _LABUP_SHELL_PID $fish_pid\n");
        s.push_str("    function _labup_leave --on-event fish_exit\n");
        let _ = writeln!(s, "        {labup} __shell leave --pid $_LABUP_SHELL_PID --project {root}");
        s.push_str("    end\n");
        let _ = writeln!(s, "    {labup} __shell enter --pid $fish_pid --project {root}");
        s.push_str("end\n");
    }
    s.push_str("set -g _LABUP_OLD_PATH $PATH\n");
    let front = front(a).iter().map(|d| q(d)).collect::<Vec<_>>().join(" ");
    let _ = writeln!(s, "set -gx PATH {front} $PATH");
    for var in SAVED {
        let _ = writeln!(s, "set -e _LABUP_OLD_{var}; if set -q {var}; set -g _LABUP_OLD_{var} ${var}; end");
    }
    let _ = writeln!(s, "set -gx VIRTUAL_ENV {}", q(&venv));
    let _ = writeln!(s, "set -gx VIRTUAL_ENV_PROMPT {}", q(&a.prompt));
    s.push_str("set -e PYTHONHOME\n");
    s.push_str("if test -z \"$VIRTUAL_ENV_DISABLE_PROMPT\"; and functions -q fish_prompt\n");
    s.push_str("    functions -c fish_prompt _labup_old_fish_prompt\n");
    s.push_str("    function fish_prompt\n");
    s.push_str("        set -l old_status $status\n");
    let _ = writeln!(s, "        printf '%s' {}", q(&format!("({}) ", a.prompt)));
    s.push_str("        echo \"exit $old_status\" | source\n");
    s.push_str("        _labup_old_fish_prompt\n");
    s.push_str("    end\nend\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activation() -> Activation {
        Activation {
            root: "/p".into(),
            venv: "/p/.venv".into(),
            wrappers: None,
            pip: None,
            prompt: "demo".into(),
            autostart: None,
        }
    }

    #[test]
    fn prompt_names_lose_what_prompts_expand() {
        assert_eq!(prompt_name("my-lab.v2"), "my-lab.v2");
        assert_eq!(prompt_name("$(rm -rf ~) %n `x`\\"), "__rm_-rf_____n__x__");
        assert_eq!(prompt_name(""), "labup");
    }

    #[test]
    fn venv_bin_first_and_wrappers_before_it() {
        let text = render(&activation(), Shell::Bash);
        assert!(text.contains("PATH='/p/.venv/bin'\"${PATH:+:$PATH}\"; export PATH\n"), "{text}");
        let a = Activation { wrappers: Some("/p/.labup/shell/bin".into()), ..activation() };
        let text = render(&a, Shell::Bash);
        assert!(text.contains("PATH='/p/.labup/shell/bin':'/p/.venv/bin'\"${PATH:+:$PATH}\""), "{text}");
        let fish = render(&a, Shell::Fish);
        assert!(fish.contains("set -gx PATH '/p/.labup/shell/bin' '/p/.venv/bin' $PATH\n"), "{fish}");
        let a = Activation { pip: Some("/p/.labup/shell/pip".into()), ..activation() };
        let text = render(&a, Shell::Bash);
        assert!(text.contains("PATH='/p/.venv/bin':'/p/.labup/shell/pip'\"${PATH:+:$PATH}\""), "{text}");
    }

    #[test]
    fn no_global_library_path_and_no_autostart_unless_asked() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = render(&activation(), shell);
            assert!(!text.contains("LD_LIBRARY_PATH"), "{text}");
            assert!(!text.contains("__shell"), "{text}");
        }
    }

    #[test]
    fn autostart_registers_and_leaves_per_shell_dialect() {
        let a = Activation { autostart: Some("labup".into()), ..activation() };
        let bash = render(&a, Shell::Bash);
        assert!(bash.contains("labup __shell enter --pid $$ --project '/p'"), "{bash}");
        assert!(bash.contains("trap '_labup_leave; eval \"$_LABUP_PREV_EXIT_TRAP\"' EXIT"), "{bash}");
        let zsh = render(&a, Shell::Zsh);
        assert!(zsh.contains("add-zsh-hook zshexit _labup_leave"), "{zsh}");
        assert!(!zsh.contains("trap "), "{zsh}");
        let fish = render(&a, Shell::Fish);
        assert!(fish.contains("function _labup_leave --on-event fish_exit"), "{fish}");
        assert!(fish.contains("labup __shell enter --pid $fish_pid --project '/p'"), "{fish}");
    }

    #[test]
    fn paths_with_quotes_stay_quoted() {
        let a = Activation { venv: "/it's/.venv".into(), ..activation() };
        assert!(render(&a, Shell::Bash).contains(r"VIRTUAL_ENV='/it'\''s/.venv'; export VIRTUAL_ENV"));
        assert!(render(&a, Shell::Fish).contains(r"set -gx VIRTUAL_ENV '/it\'s/.venv'"));
    }
}
