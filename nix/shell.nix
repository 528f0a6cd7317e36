# `nix develop`: labup, the project's Python and uv on PATH. The repository's own shell
# passes crane's devShell as mkShell (Rust toolchain and everything the checks use).
{
  mkShell,
  name,
  labup,
  python,
  uv,
  packages ? [ ],
  shellArgs ? { },
}:
mkShell (
  shellArgs
  // {
    name = "${name}-shell";
    packages = [
      labup
      python
      uv
    ]
    ++ packages;
    # Activates .venv in this shell (venv first on PATH, prompt marker, `deactivate`) without
    # syncing or exporting LD_LIBRARY_PATH: instant, and host programs keep working. It only
    # hints when .venv is missing or stale; with [shell] autostart it also starts the services
    # and stops them when the last such shell exits.
    shellHook = ''
      eval "$(labup hook bash)"
    '';
  }
)
