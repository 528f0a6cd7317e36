# `nix develop`: labup, the project's Python and uv on PATH. The repository's own shell
# passes crane's devShell as mkShell (Rust toolchain and everything the checks use).
{ mkShell
, name
, labup
, python
, uv
, packages ? [ ]
, shellArgs ? { }
}:
mkShell (shellArgs // {
  name = "${name}-shell";
  packages = [ labup python uv ] ++ packages;
  # Until the shell-integration issue adds `labup hook`, only a hint; then this becomes
  #   eval "$(labup hook bash)"
  # which activates the venv (and, with [shell] autostart, starts the services).
  shellHook = ''
    echo "labup: run \`labup sync\` to build .venv, then \`labup run -- python\`" >&2
  '';
})
