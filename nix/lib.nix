# What the flake builds for one system and one project's labup.toml, and `mkFlake`, which
# gives an adopter's repository the same packages, apps and dev shell as this one.
{ nixpkgs, crane }:
let
  pure = import ./config.nix;
  inherit (nixpkgs) lib;

  workspace = { system, settings }:
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
      inherit pkgs craneLib python labup labupLlm;
      apps = import ./apps.nix {
        inherit lib pure labup labupLlm;
        inherit (pkgs) writeShellScript;
      };
      # args: mkShell, shellArgs and packages for this repository's own shell.
      shell = args: import ./shell.nix ({
        inherit (settings) name;
        inherit (pkgs) mkShell uv;
        inherit labup python;
      } // args // {
        packages = extraTools ++ args.packages or [ ];
      });
    };

  mkFlake =
    {
      # The adopter's repository (`./.` in their flake.nix); its labup.toml is read here.
      src
    , systems ? pure.systems
    }:
    let
      settings = pure.readConfig src;
      perSystem = lib.genAttrs systems (system: workspace { inherit system settings; });
    in
    {
      packages = lib.mapAttrs (_: w: { inherit (w) labup; default = w.labup; }) perSystem;
      apps = lib.mapAttrs (_: w: w.apps) perSystem;
      devShells = lib.mapAttrs (_: w: { default = w.shell { }; }) perSystem;
      formatter = lib.mapAttrs (_: w: w.pkgs.nixpkgs-fmt) perSystem;
    };
in
{
  inherit workspace mkFlake;
}
