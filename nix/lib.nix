# What the flake builds for one system and one project's labup.toml, and `mkFlake`, which
# gives an adopter's repository the same packages, apps, dev shell and image as this one.
{ nixpkgs, crane }:
let
  pure = import ./config.nix;
  inherit (nixpkgs) lib;

  # The systems of pure.systems that this nixpkgs still has: nixpkgs 26.05 is the last
  # release with x86_64-darwin, and a nixpkgs without it drops it here instead of failing.
  defaultSystems = builtins.filter (system: nixpkgs.legacyPackages ? ${system}) pure.systems;

  # labup's embedded default services (the file the binary includes), for the image's ports.
  defaults = builtins.fromTOML (builtins.readFile ../src/config/default.toml);

  workspace =
    { system, settings }:
    let
      pkgs = nixpkgs.legacyPackages.${system};
      craneLib = crane.mkLib pkgs;
      python = pure.pythonFor pkgs settings;
      extraTools = pure.toolsFor pkgs settings;

      labup = pkgs.callPackage ./package.nix { inherit craneLib python extraTools; };

      # A second nixpkgs instance, evaluated only when up-llm is used, so that accepting
      # the CUDA EULA does not leak into anything else the flake builds.
      llmPkgs = import nixpkgs {
        inherit system;
        config.allowUnfreePredicate = pure.allowCudaUnfree;
      };
      ollama = if pkgs.stdenv.hostPlatform.isLinux then llmPkgs.ollama-cuda else pkgs.ollama;
      labupLlm = labup.override { withOllama = ollama; };
    in
    {
      inherit
        pkgs
        craneLib
        python
        labup
        labupLlm
        ;
      apps = import ./apps.nix {
        inherit
          lib
          pure
          labup
          labupLlm
          ;
        inherit (pkgs) writeShellScript;
      };
      # args: mkShell, shellArgs and packages for this repository's own shell.
      shell =
        args:
        import ./shell.nix (
          {
            inherit (settings) name;
            inherit (pkgs) mkShell uv;
            inherit labup python;
          }
          // args
          // {
            packages = extraTools ++ args.packages or [ ];
          }
        );
      # The OCI image of the project in `src` (Linux only: images run Linux binaries).
      image =
        src:
        pkgs.callPackage ./image.nix {
          inherit labup python src;
          inherit (settings) name;
          ports = pure.exposedPorts {
            inherit defaults;
            settings = pure.readConfig src;
            hasServerPy = builtins.pathExists (src + "/server.py");
          };
        };
    };

  # packages.<system>: labup, and the image on Linux.
  packagesOf =
    system: w: src:
    {
      inherit (w) labup;
      default = w.labup;
    }
    // lib.optionalAttrs (lib.hasSuffix "-linux" system) { image = w.image src; };

  mkFlake =
    {
      # The adopter's repository (`./.` in their flake.nix); its labup.toml is read here.
      src,
      systems ? defaultSystems,
    }:
    let
      settings = pure.readConfig src;
      perSystem = lib.genAttrs systems (system: workspace { inherit system settings; });
    in
    {
      packages = lib.mapAttrs (system: w: packagesOf system w src) perSystem;
      apps = lib.mapAttrs (_: w: w.apps) perSystem;
      devShells = lib.mapAttrs (_: w: { default = w.shell { }; }) perSystem;
      formatter = lib.mapAttrs (_: w: w.pkgs.nixfmt-tree) perSystem;
    };
in
{
  inherit
    defaultSystems
    workspace
    packagesOf
    mkFlake
    ;
}
