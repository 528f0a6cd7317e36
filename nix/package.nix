# labup built with crane, then wrapped so it finds Nix's Python, uv and the native libraries
# PyPI wheels need. The wrapping is a separate, cheap derivation: a project asking for
# another Python (or for Ollama) re-wraps the same binary instead of recompiling it.
{ lib
, stdenv
, craneLib
, runCommand
, makeWrapper
, libiconv
, zlib
, libGL
, glib
, uv
, python
  # Extra tools on PATH for labup and the services it starts ([nix] packages in labup.toml).
, extraTools ? [ ]
  # An ollama package for the `up-llm` app. The name is not a nixpkgs attribute on purpose:
  # callPackage would fill in `ollama` by itself and pull it into every closure.
, withOllama ? null
}:
let
  root = ../.;

  # crane's cleanCargoSource keeps only .rs and .toml files; the tests and include_str!
  # need the rest of this list. Nix files stay out so editing them does not rebuild labup.
  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions [
      (craneLib.fileset.commonCargoSources root)
      (root + "/src/config/default.toml") # include_str! target
      (root + "/tests/fixtures") # wheels and scripts the integration tests build from
      (root + "/README.md") # tests/it/docs.rs checks it
      (root + "/examples")
    ];
  };

  commonArgs = {
    inherit src;
    strictDeps = true;
    buildInputs = lib.optionals stdenv.hostPlatform.isDarwin [ libiconv ];
  };

  cargoArtifacts = craneLib.buildDepsOnly commonArgs;

  unwrapped = craneLib.buildPackage (commonArgs // {
    inherit cargoArtifacts;
    # The tests run once, in checks.nextest, where they get python and uv.
    doCheck = false;

    # Shell completions and the man page come from the binary once `labup completions`
    # exists (a later issue). Then add installShellFiles to nativeBuildInputs and:
    #   postInstall = lib.optionalString (stdenv.buildPlatform.canExecute stdenv.hostPlatform) ''
    #     installShellCompletion --cmd labup \
    #       --bash <($out/bin/labup completions bash) \
    #       --fish <($out/bin/labup completions fish) \
    #       --zsh <($out/bin/labup completions zsh)
    #     $out/bin/labup man > labup.1
    #     installManPage labup.1
    #   '';
    # The wrapper below already links share/ through, so nothing else changes.

    inherit meta;
  });

  # What PyPI wheels load under a Nix Python that a distribution would have in /usr/lib:
  # libstdc++ (numpy, pandas, torch), libz, and libGL + glib for opencv-python.
  # macOS wheels link system frameworks instead, so there is nothing to add there.
  # Not confirmed in nixpkgs' source here: `stdenv.cc.cc.lib` as the output holding
  # libstdc++.so.6 (gcc's expression was not read; it is the usual idiom), and zlib's
  # library in its `out` output (read only at an old revision).
  wheelLibraries = lib.optionals stdenv.hostPlatform.isLinux [
    stdenv.cc.cc.lib
    zlib
    libGL
    glib
  ];

  # --set-default: a user's own LABUP_PYTHON / LABUP_UV still wins, as without Nix.
  wrapperArgs = [
    "--set-default LABUP_PYTHON ${python.interpreter}"
    "--set-default LABUP_UV ${lib.getExe uv}"
  ]
  ++ lib.optional (wheelLibraries != [ ]) "--prefix LABUP_LIBRARY_PATH : ${lib.makeLibraryPath wheelLibraries}"
  ++ lib.optional (extraTools != [ ]) "--prefix PATH : ${lib.makeBinPath extraTools}"
  ++ lib.optional (withOllama != null) "--set-default LABUP_OLLAMA ${lib.getExe withOllama}";

  meta = {
    description = "Bring up a Python data-science workspace (venv, GPU wiring, JupyterLab, services) in one command";
    homepage = "https://github.com/OWNER/labup";
    license = lib.licenses.mit;
    mainProgram = "labup";
    platforms = lib.platforms.linux ++ lib.platforms.darwin;
  };
in
runCommand "labup-${unwrapped.version}"
{
  nativeBuildInputs = [ makeWrapper ];
  inherit meta;
  passthru = {
    # checks.nix builds clippy, doc and nextest from the same source and dependencies.
    inherit unwrapped cargoArtifacts commonArgs src python;
  };
}
  ''
    mkdir -p $out/bin
    makeWrapper ${lib.getExe unwrapped} $out/bin/labup ${lib.concatStringsSep " " wrapperArgs}
    if [ -d ${unwrapped}/share ]; then
      ln -s ${unwrapped}/share $out/share
    fi
  ''
