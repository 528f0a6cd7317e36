# Models the leaf packages the flake and crane name. What is modelled: the attribute
# exists, it is a derivation (failing builder), its outputs, `meta.mainProgram` (what
# lib.getExe reads), `meta.license` and `meta.platforms` where check-meta.nix would refuse
# the package, and the passthru attributes callers read (a Python's `interpreter`,
# `pythonVersion`, `pkgs`). Versions are placeholders, not nixpkgs' versions.
{ lib, stdenv }:
let
  package =
    {
      pname,
      mainProgram ? pname,
      outputs ? [ "out" ],
      license ? lib.licenses.mit,
      platforms ? lib.platforms.all,
      passthru ? { },
      buildInputs ? [ ],
    }:
    stdenv.mkDerivation {
      inherit
        pname
        outputs
        passthru
        buildInputs
        ;
      version = "0-stub";
      meta = {
        inherit mainProgram license platforms;
      };
    };

  # pkgs/development/interpreters/python/cpython/default.nix (passthru) and
  # pkgs/top-level/python-packages.nix (`pythonXYPackages`, `python.pkgs`): a few packages.
  python =
    minor:
    let
      pythonVersion = "3.${toString minor}";
      packages = {
        black = package { pname = "black"; };
      };
    in
    stdenv.mkDerivation (finalAttrs: {
      pname = "python3";
      version = "${pythonVersion}.0";
      meta = {
        mainProgram = "python${pythonVersion}";
        license = lib.licenses.psfl;
        platforms = lib.platforms.linux ++ lib.platforms.darwin;
      };
      passthru = {
        inherit pythonVersion;
        executable = "python${pythonVersion}";
        interpreter = "${finalAttrs.finalPackage}/bin/python${pythonVersion}";
        sitePackages = "lib/python${pythonVersion}/site-packages";
        pkgs = packages;
        isPy3 = true;
      };
    });

  # pkgs/development/cuda-modules: the libraries ollama-cuda links carry NVIDIA's EULA.
  cudaEula = {
    shortName = "CUDA EULA";
    fullName = "CUDA Toolkit End User License Agreement (EULA)";
    free = false;
  };
in
rec {
  # pkgs/shells/bash: the shell of writeShellScript (runtimeShell) and of the image.
  bash = package { pname = "bash"; };
  bashInteractive = package { pname = "bash"; };
  # pkgs/tools/misc/coreutils: the image's basic commands (`env` for #! lines).
  coreutils = package {
    pname = "coreutils";
    mainProgram = "ls";
  };
  # pkgs/data/misc/cacert: the bundle at etc/ssl/certs/ca-bundle.crt (the image's SSL_CERT_FILE).
  cacert = package {
    pname = "nss-cacert";
    mainProgram = null;
  };
  # pkgs/by-name/jq/jq: a tool the tests name in `[nix] packages`.
  jq = package { pname = "jq"; };
  # pkgs/by-name/rs/rsync and pkgs/by-name/zs/zstd: mkCargoDerivation's nativeBuildInputs.
  rsync = package { pname = "rsync"; };
  zstd = package { pname = "zstd"; };
  # pkgs/os-specific/linux/procps-ng on Linux (ps, sysctl, …; Linux only); on darwin
  # pkgs/top-level/unixtools.nix's `procps` (ps, from darwin's adv_cmds) is what `procps` is.
  procps =
    if stdenv.hostPlatform.isLinux then
      package {
        pname = "procps";
        mainProgram = "ps";
        platforms = lib.platforms.linux;
      }
    else
      unixtools.procps;
  # pkgs/top-level/unixtools.nix: the darwin or Linux provider of each classic command.
  unixtools = {
    procps = package {
      pname = "procps";
      mainProgram = "ps";
    };
    sysctl = package {
      pname = "sysctl";
      mainProgram = "sysctl";
    };
  };
  # pkgs/os-specific/darwin: crane's removeReferencesToVendoredSources hook sources
  # darwin.signingUtils on aarch64-darwin.
  darwin.signingUtils = package {
    pname = "signing-utils";
    mainProgram = null;
    platforms = lib.platforms.darwin;
  };
  # The libraries package.nix links (libiconv, on darwin) and puts on LABUP_LIBRARY_PATH
  # (Linux): pkgs/development/libraries/libiconv, zlib, libglvnd (nixpkgs' `libGL` on Linux)
  # and glib, with the outputs lib.makeLibraryPath chooses from.
  libiconv = package {
    pname = "libiconv";
    mainProgram = null;
  };
  zlib = package {
    pname = "zlib";
    mainProgram = null;
    outputs = [
      "out"
      "dev"
    ];
  };
  libGL = package {
    pname = "libglvnd";
    mainProgram = null;
    outputs = [
      "out"
      "dev"
    ];
  };
  glib = package {
    pname = "glib";
    mainProgram = null;
    outputs = [
      "out"
      "dev"
      "bin"
    ];
  };

  # pkgs/top-level/all-packages.nix: one interpreter per minor version, python3 = 3.13.
  python312 = python 12;
  python313 = python 13;
  python314 = python 14;
  python3 = python313;
  python312Packages = python312.pkgs;
  python313Packages = python313.pkgs;
  python314Packages = python314.pkgs;

  # pkgs/by-name/uv/uv.
  uv = package {
    pname = "uv";
    license = [
      lib.licenses.mit
      lib.licenses.asl20
    ];
  };
  # pkgs/development/compilers/rust: the toolchain crane builds with and devShell adds.
  cargo = package { pname = "cargo"; };
  rustc = package { pname = "rustc"; };
  clippy = package {
    pname = "clippy";
    mainProgram = "cargo-clippy";
  };
  rustfmt = package { pname = "rustfmt"; };
  # pkgs/by-name/ca/cargo-nextest and cargo-llvm-cov (crane's cargoNextest asks for both),
  # pkgs/by-name/de/deadnix and pkgs/by-name/ni/nixfmt (RFC 166 nixfmt): checks and shell.
  cargo-nextest = package { pname = "cargo-nextest"; };
  cargo-llvm-cov = package { pname = "cargo-llvm-cov"; };
  deadnix = package { pname = "deadnix"; };
  nixfmt = package { pname = "nixfmt"; };
  # pkgs/by-name/ni/nixfmt-tree: treefmt configured to run nixfmt on every .nix file of the
  # tree (from the flake root) when given no arguments: nixpkgs' suggested `formatter`.
  nixfmt-tree = package {
    pname = "treefmt";
    mainProgram = "treefmt";
  };

  # pkgs/by-name/ol/ollama: `ollama`, and `ollama-cuda` (acceleration = "cuda"), which links
  # CUDA libraries under NVIDIA's unfree EULA, so check-meta refuses it without consent.
  ollama = package { pname = "ollama"; };
  cudaPackages.cuda_cudart = package {
    pname = "cuda_cudart";
    mainProgram = null;
    license = cudaEula;
    platforms = lib.platforms.linux;
  };
  ollama-cuda = package {
    pname = "ollama";
    platforms = lib.platforms.linux;
    buildInputs = [ cudaPackages.cuda_cudart ];
  };

}
