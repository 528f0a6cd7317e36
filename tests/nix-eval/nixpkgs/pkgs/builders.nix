# Models the builders labup's flake and crane call. Each is a real derivation through
# stdenv.mkDerivation (so its builder always fails); what is modelled is the arguments each
# accepts (exact formals where nixpkgs has them, so a misspelled argument fails here as
# there) and the attributes of its result that callers read.
{
  lib,
  self,
  stdenv,
}:
let
  inherit (stdenv) mkDerivation;
in
rec {
  # pkgs/build-support/trivial-builders/default.nix: runCommandWith / runCommand /
  # runCommandLocal (name, an attribute set merged into the derivation, the build script).
  runCommand =
    name: env: buildCommand:
    mkDerivation (
      {
        inherit name buildCommand;
      }
      // env
    );
  runCommandLocal =
    name: env:
    runCommand name (
      {
        preferLocalBuild = true;
        allowSubstitutes = false;
      }
      // env
    );

  # trivial-builders: writeTextFile and the helpers over it (writeText, writeShellScript);
  # `text` is kept as an attribute, so tests read a script from its derivation.
  writeTextFile =
    {
      name,
      text,
      executable ? false,
      destination ? "",
      checkPhase ? "",
      meta ? { },
      passthru ? { },
      allowSubstitutes ? false,
      preferLocalBuild ? true,
      derivationArgs ? { },
    }:
    mkDerivation (
      {
        inherit
          name
          text
          executable
          destination
          checkPhase
          meta
          passthru
          allowSubstitutes
          preferLocalBuild
          ;
      }
      // derivationArgs
    );
  writeText = name: text: writeTextFile { inherit name text; };
  writeShellScript =
    name: text:
    writeTextFile {
      inherit name;
      executable = true;
      text = "#!${self.runtimeShell}\n${text}\n";
    };

  # pkgs/build-support/trivial-builders (makeSetupHook { name, propagatedBuildInputs,
  # depsTargetTargetPropagated, meta, passthru, substitutions } script): crane's hooks, and
  # nixpkgs' makeWrapper, installShellFiles and writableTmpDirAsHomeHook, which are such hooks.
  makeSetupHook =
    {
      name ? lib.warn "calling makeSetupHook without passing a name is deprecated." "hook",
      propagatedBuildInputs ? [ ],
      depsTargetTargetPropagated ? [ ],
      meta ? { },
      passthru ? { },
      substitutions ? { },
    }:
    script:
    mkDerivation {
      inherit
        name
        propagatedBuildInputs
        depsTargetTargetPropagated
        meta
        passthru
        ;
      inherit script;
      substitutions = builtins.toJSON substitutions;
    };
  makeWrapper = makeSetupHook { name = "make-shell-wrapper-hook"; } ./fail.sh;
  installShellFiles = makeSetupHook { name = "install-shell-files"; } ./fail.sh;
  writableTmpDirAsHomeHook = makeSetupHook { name = "writable-tmpdir-as-home-hook"; } ./fail.sh;
  # pkgs/build-support/rust/hooks/default.nix: bindgenHook, the hook that points bindgen at
  # libclang and the C headers (LIBCLANG_PATH, BINDGEN_EXTRA_CLANG_ARGS).
  rustPlatform.bindgenHook = makeSetupHook { name = "rust-bindgen-hook"; } ./fail.sh;

  # pkgs/build-support/mkshell/default.nix: packages and inputsFrom's inputs (minus the
  # inputsFrom derivations themselves) merged into the shell's inputs, inputsFrom's
  # shellHooks before the shell's own, and a build that refuses to run.
  mkShell =
    {
      name ? "nix-shell",
      packages ? [ ],
      inputsFrom ? [ ],
      ...
    }@attrs:
    let
      mergeInputs =
        name:
        (attrs.${name} or [ ]) ++ lib.subtractLists inputsFrom (lib.flatten (lib.catAttrs name inputsFrom));
      rest = removeAttrs attrs [
        "name"
        "packages"
        "inputsFrom"
        "buildInputs"
        "nativeBuildInputs"
        "propagatedBuildInputs"
        "propagatedNativeBuildInputs"
        "shellHook"
      ];
    in
    mkDerivation (
      {
        inherit name;
        buildInputs = mergeInputs "buildInputs";
        nativeBuildInputs = packages ++ (mergeInputs "nativeBuildInputs");
        propagatedBuildInputs = mergeInputs "propagatedBuildInputs";
        propagatedNativeBuildInputs = mergeInputs "propagatedNativeBuildInputs";
        shellHook = lib.concatStringsSep "\n" (
          lib.catAttrs "shellHook" (lib.reverseList inputsFrom ++ [ attrs ])
        );
        phases = [ "buildPhase" ];
        buildPhase = "echo 'This derivation is not meant to be built, aborting' >&2; exit 1";
      }
      // rest
    );

  # pkgs/build-support/fetchurl/default.nix: a fixed-output derivation (url or urls; sha256
  # or hash). Never fetched here: --no-build and the failing builder.
  fetchurl =
    {
      url ? "",
      urls ? [ ],
      name ? baseNameOf (if url != "" then url else builtins.head urls),
      sha256 ? "",
      hash ? "",
      ...
    }:
    mkDerivation {
      inherit name;
      urls = if url != "" then [ url ] else urls;
      outputHashMode = "flat";
      outputHashAlgo = if hash != "" then null else "sha256";
      outputHash = if hash != "" then hash else sha256;
      preferLocalBuild = true;
    };

  # pkgs/build-support/rust/build-rust-package: buildRustPackage, only for crane's own
  # crane-utils (built by writeTOML); `cargoLock.lockFile` is read at evaluation time.
  rustPlatform.buildRustPackage =
    {
      pname,
      version,
      src,
      cargoLock ? null,
      cargoHash ? null,
      nativeBuildInputs ? [ ],
      ...
    }@args:
    assert cargoLock != null || cargoHash != null;
    mkDerivation (
      removeAttrs args [ "cargoLock" ]
      // {
        inherit pname version src;
        nativeBuildInputs = nativeBuildInputs ++ [
          self.cargo
          self.rustc
        ];
        cargoLockText = if cargoLock != null then builtins.readFile cargoLock.lockFile else "";
        meta = args.meta or { } // {
          mainProgram = args.meta.mainProgram or pname;
        };
      }
    );

  # pkgs/build-support/docker/default.nix: streamLayeredImage, its formals as of nixpkgs
  # 25.05 (an unknown argument fails), `config` serialised as the image's config JSON,
  # `contents` kept as a list of store paths. The result is the `stream` script that writes
  # the image to stdout, as in nixpkgs (passthru.imageTag, isExe).
  dockerTools.streamLayeredImage = lib.makeOverridable (
    {
      name,
      tag ? null,
      fromImage ? null,
      contents ? [ ],
      config ? { },
      architecture ? stdenv.hostPlatform.go.GOARCH,
      created ? "1970-01-01T00:00:01Z",
      mtime ? "1970-01-01T00:00:01Z",
      uid ? 0,
      gid ? 0,
      uname ? "root",
      gname ? "root",
      maxLayers ? 100,
      extraCommands ? "",
      fakeRootCommands ? "",
      enableFakechroot ? false,
      includeStorePaths ? true,
      includeNixDB ? false,
      passthru ? { },
      meta ? { },
      layeringPipeline ? null,
      debug ? false,
    }:
    assert lib.assertMsg (
      maxLayers > 1
    ) "the maxLayers argument of dockerTools.buildLayeredImage function must be greather than 1";
    assert lib.assertMsg stdenv.hostPlatform.isLinux "dockerTools builds Linux images";
    mkDerivation {
      name = "stream-${baseNameOf name}";
      imageName = name;
      imageTag = if tag == null then "latest" else tag;
      conf = builtins.toJSON {
        inherit config architecture created;
        os = "linux";
      };
      contents = map toString (lib.toList contents);
      inherit
        fromImage
        mtime
        uid
        gid
        uname
        gname
        maxLayers
        extraCommands
        fakeRootCommands
        enableFakechroot
        includeStorePaths
        includeNixDB
        layeringPipeline
        debug
        ;
      passthru = passthru // {
        imageName = name;
        imageTag = if tag == null then "latest" else tag;
        isExe = true;
      };
      inherit meta;
    }
  );

  runtimeShell = "${self.bash}/bin/bash";
}
