{
  description = "labup: bring up a reproducible Python data-science workspace in one command";

  inputs = {
    # crane at the locked revision needs nixpkgs 26.05 or newer.
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    crane.url = "github:ipetkov/crane";
  };

  # Wiring only: what each output is lives in nix/.
  outputs =
    {
      self,
      nixpkgs,
      crane,
    }:
    let
      inherit (nixpkgs) lib;
      pure = import ./nix/config.nix;
      labupLib = import ./nix/lib.nix { inherit nixpkgs crane; };

      # This repository has no labup.toml of its own: the defaults (Python 3.12) apply.
      settings = pure.readConfig ./.;
      # x86_64-darwin only while nixpkgs still has it (26.05 is its last release).
      perSystem = lib.genAttrs labupLib.defaultSystems (
        system: labupLib.workspace { inherit system settings; }
      );
      forEach = f: lib.mapAttrs f perSystem;
    in
    {
      # labup and, on Linux, `image`: an OCI image of examples/demo run by
      # `labup up --foreground` (an adopter's image, through mkFlake, is of their project).
      packages = forEach (system: w: labupLib.packagesOf system w ./examples/demo);

      apps = forEach (_: w: w.apps);

      checks = forEach (
        _: w:
        import ./nix/checks.nix {
          inherit (w) craneLib labup;
          inherit (w.pkgs)
            lib
            runCommand
            uv
            nixfmt
            deadnix
            procps
            ;
          otherPython = w.pkgs.${pure.otherPythonAttr settings};
        }
      );

      devShells = forEach (
        system: w: {
          default = w.shell {
            mkShell = w.craneLib.devShell;
            shellArgs.checks = self.checks.${system};
            packages = [
              w.pkgs.cargo-nextest
              w.pkgs.nixfmt
              w.pkgs.deadnix
            ];
          };
        }
      );

      # nixpkgs' nixfmt-tree: treefmt running nixfmt (RFC 166, the style nixpkgs uses), so a
      # bare `nix fmt` formats every .nix file of the tree and `nix fmt FILE…` those files.
      formatter = forEach (_: w: w.pkgs.nixfmt-tree);

      # Builds against the nixpkgs it is applied to (26.05 or newer, for crane).
      overlays.default = final: _prev: {
        labup = final.callPackage ./nix/package.nix {
          craneLib = crane.mkLib final;
          python = final.${pure.pythonAttr pure.defaultPythonVersion};
        };
      };

      # services.labup.workspaces.<name> = { path; user; }: one systemd unit per workspace.
      nixosModules.default = import ./nix/module.nix { inherit self; };

      lib = { inherit (labupLib) mkFlake; };

      templates.default = {
        path = ./templates/default;
        description = "A Python data-science workspace brought up by labup";
        welcomeText = ''
          Edit labup.toml (Python version, requirements, services), then:

              git add flake.nix labup.toml .gitignore
              nix run .#up      # venv, services, URLs
              nix develop       # a shell with labup, Python and uv
        '';
      };
    };
}
