{
  description = "labup: bring up a reproducible Python data-science workspace in one command";

  inputs = {
    # crane at the locked revision needs nixpkgs 26.05 or newer.
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    crane.url = "github:ipetkov/crane";
  };

  # Wiring only: what each output is lives in nix/.
  outputs = { self, nixpkgs, crane }:
    let
      inherit (nixpkgs) lib;
      pure = import ./nix/config.nix;
      labupLib = import ./nix/lib.nix { inherit nixpkgs crane; };

      # This repository has no labup.toml of its own: the defaults (Python 3.12) apply.
      settings = pure.readConfig ./.;
      perSystem = lib.genAttrs pure.systems (system: labupLib.workspace { inherit system settings; });
      forEach = f: lib.mapAttrs f perSystem;
    in
    {
      packages = forEach (_: w: {
        inherit (w) labup;
        default = w.labup;
      });

      apps = forEach (_: w: w.apps);

      checks = forEach (_: w: import ./nix/checks.nix {
        inherit (w) craneLib labup;
        inherit (w.pkgs) lib runCommand uv nixpkgs-fmt deadnix procps;
        otherPython = w.pkgs.python313;
      });

      devShells = forEach (system: w: {
        default = w.shell {
          mkShell = w.craneLib.devShell;
          shellArgs.checks = self.checks.${system};
          packages = [ w.pkgs.cargo-nextest w.pkgs.nixpkgs-fmt w.pkgs.deadnix ];
        };
      });

      formatter = forEach (_: w: w.pkgs.nixpkgs-fmt);

      # Builds against the nixpkgs it is applied to (26.05 or newer, for crane).
      overlays.default = final: _prev: {
        labup = final.callPackage ./nix/package.nix {
          craneLib = crane.mkLib final;
          python = final.${pure.pythonAttr pure.defaultPythonVersion};
        };
      };

      lib = { inherit (labupLib) mkFlake; };

      templates.default = {
        path = ./templates/default;
        description = "A Python data-science workspace brought up by labup";
        welcomeText = ''
          Edit labup.toml (Python version, requirements, services), then:

              nix run .#up      # venv, services, URLs
              nix develop       # a shell with labup, Python and uv
        '';
      };
    };
}
