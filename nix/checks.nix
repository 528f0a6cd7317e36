# `nix flake check`: the package, crane's clippy/fmt/doc/nextest on the same source and
# dependency artifacts, Nix format and lint, and a smoke test of the wrapped binary.
# Everything runs in the sandbox: no network.
{
  lib,
  runCommand,
  craneLib,
  labup,
  uv,
  nixfmt,
  deadnix,
  # `ps`, which the service tests use to list a process group independently of labup.
  procps,
  # A second interpreter for tests/it's interpreter-change test (see preCheck below).
  otherPython,
}:
let
  inherit (labup.passthru)
    commonArgs
    cargoArtifacts
    src
    python
    runtimeTools
    ;
  root = ../.;

  # Tests the sandbox cannot run, excluded by name and never silently: nextest prints the
  # number it skipped. Everything else in tests/ runs here.
  # - binary_id(labup::nix): tests/nix.rs drives nix-instantiate, nixfmt and deadnix,
  #   and there is no Nix inside a Nix build. `nix-lint` below covers format and lint;
  #   CI (.ci/run, after .ci/setup.d/20-nix-tools.sh) runs the whole binary.
  # - test(/engine_/): tests that need what a build sandbox lacks: podman, Slurm,
  #   JupyterHub, npm packages, Chromium, or Nix itself with the evaluation inputs (all of
  #   tests/nix_eval.rs). CI installs those and runs them.
  # - test(/^pip::pip_/): labup's pip fallback runs `python -m pip` from the base
  #   interpreter, and nixpkgs' Python ships without pip. CI runs them with a pip-carrying
  #   Python. (uv_installer_without_uv in the same module needs no pip and runs here.)
  # - test(/pypi_/): the few tests that install from PyPI (a real FastHTML app); the
  #   sandbox has no network. Every other integration test installs fixture wheels built
  #   by tests/fixtures/make_wheels.py from a local folder.
  nextestFilter = "not (binary_id(labup::nix) | test(/engine_/) | (binary_id(labup::it) & (test(/^pip::pip_/) | test(/pypi_/))))";

  nixFiles = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.fileFilter (file: file.hasExt "nix") root;
  };
in
{
  inherit labup;

  # doInstallCargoArtifacts = false: nothing consumes these checks' target/ (crane would
  # copy it into each output otherwise).
  clippy = craneLib.cargoClippy (
    commonArgs
    // {
      inherit cargoArtifacts;
      doInstallCargoArtifacts = false;
      cargoClippyExtraArgs = "--all-targets -- --deny warnings";
    }
  );

  fmt = craneLib.cargoFmt { inherit src; };

  doc = craneLib.cargoDoc (
    commonArgs
    // {
      inherit cargoArtifacts;
      env.RUSTDOCFLAGS = "--deny warnings";
    }
  );

  nextest = craneLib.cargoNextest (
    commonArgs
    // {
      inherit cargoArtifacts;
      doInstallCargoArtifacts = false;
      cargoNextestExtraArgs = "--no-tests=fail -E ${lib.escapeShellArg nextestFilter}";
      # tests/it finds `python3` and `uv` on PATH, as a contributor's machine has them, and
      # on macOS labup needs `ps` and `sysctl` there.
      nativeCheckInputs = [
        python
        uv
        procps
      ]
      ++ runtimeTools;
      # The tests serve and probe HTTP on 127.0.0.1, which the darwin sandbox forbids unless
      # asked (ignored on Linux).
      __darwinAllowLocalNetworking = true;
      # HOME: the sandbox's is unwritable, and uv and Python look there.
      # ~/.pyenv/versions: one of the places tests/it/sync.rs looks for a second
      # interpreter (it never finds /usr/bin/python3 in the sandbox).
      preCheck = ''
        export HOME=$(mktemp -d)
        mkdir -p $HOME/.pyenv/versions
        ln -s ${otherPython} $HOME/.pyenv/versions/other
      '';
    }
  );

  nix-lint =
    runCommand "labup-nix-lint"
      {
        nativeBuildInputs = [
          nixfmt
          deadnix
        ];
      }
      ''
        cd ${nixFiles}
        nixfmt --check $(find . -name '*.nix' | sort)
        deadnix --fail .
        touch $out
      '';

  # The wrapped binary in the sandbox with the Nix Python, uv and no network: build a
  # venv from local fixture wheels, check the no-op path, then `labup up` a small HTTP
  # service, see it ready in `labup status --json`, and `labup stop` it.
  smoke =
    runCommand "labup-smoke"
      {
        nativeBuildInputs = [ labup ];
        # `labup up` serves and probes HTTP on 127.0.0.1.
        __darwinAllowLocalNetworking = true;
      }
      ''
        export HOME=$TMPDIR NO_COLOR=1 LABUP_NO_PROGRESS=1
        ${python.interpreter} ${src}/tests/fixtures/make_wheels.py $TMPDIR/wheels
        mkdir project
        cd project
        printf '%s\n' --no-index "--find-links $TMPDIR/wheels" beta > requirements.txt
        # Declared services replace the default set: no Jupyter, whose sync would need PyPI.
        cat > labup.toml <<'EOF'
        [services.web]
        command = ["python", "-m", "http.server", "--bind", "127.0.0.1", "$PORT"]
        port = "auto"
        ready = { http = "/" }
        EOF

        labup sync --json > first.json
        labup sync --json > second.json
        ${python.interpreter} - <<'EOF'
        import json
        first = json.load(open("first.json"))
        second = json.load(open("second.json"))
        assert first["action"] == "created" and first["installed"] == 2, first
        assert first["python"].startswith("${python.pythonVersion}."), first
        assert second["action"] == "noop", second
        EOF
        .venv/bin/python -c 'import alpha, beta'

        labup up
        labup status --json > status.json
        labup stop
        labup status --json > stopped.json
        ${python.interpreter} - <<'EOF'
        import json
        up = json.load(open("status.json"))
        web = up["services"][0]
        assert up["supervisor"]["running"] and web["state"] == "ready" and web["pid"], up
        down = json.load(open("stopped.json"))
        assert not down["supervisor"]["running"] and down["services"][0]["state"] == "stopped", down
        EOF
        touch $out
      '';
}
