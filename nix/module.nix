# `nixosModules.default`: `services.labup.workspaces.<name>` keeps a workspace up on a
# shared (GPU) server as a system unit `labup-<name>.service`, the same unit
# `labup export systemd` writes: labup gets SIGTERM (KillMode=mixed) and stops its own
# process groups; whatever is left gets SIGKILL after TimeoutStopSec.
{ self }:
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;

  # The unit name `labup export systemd` gives: characters other than ASCII letters, digits,
  # `_`, `.` and `-` become `-`.
  sanitise =
    name:
    lib.concatMapStrings (c: if builtins.match "[A-Za-z0-9_.-]" c != null then c else "-") (
      lib.stringToCharacters name
    );

  # One ExecStart word: `%` (a specifier) and `$` (a variable) doubled so systemd keeps them,
  # then quoted where needed.
  execWord = word: lib.escapeShellArg (builtins.replaceStrings [ "%" "$" ] [ "%%" "$$" ] word);

  workspace = types.submodule (
    { name, ... }:
    {
      options = {
        enable = mkOption {
          type = types.bool;
          default = true;
          description = "Whether to keep workspace ${name} up.";
        };
        path = mkOption {
          type = types.strMatching "/.*";
          example = "/srv/lab";
          description = "The project folder (with its labup.toml), an absolute path on the server.";
        };
        user = mkOption {
          type = types.str;
          example = "alice";
          description = "The user the workspace runs as; it owns the project's .venv and .labup.";
        };
        package = mkOption {
          type = types.package;
          default = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
          defaultText = lib.literalExpression "labup.packages.\${pkgs.stdenv.hostPlatform.system}.default";
          description = "The labup to run (the flake's wrapped labup: Nix's Python and uv).";
        };
        stopTimeout = mkOption {
          type = types.ints.positive;
          default = 10;
          description = "The largest `stop-timeout` among the workspace's services (labup's default is 10 s); the unit waits 30 s more before SIGKILL.";
        };
        environment = mkOption {
          type = types.attrsOf types.str;
          default = { };
          example = {
            LABUP_DRIVER_DIRS = "/run/opengl-driver/lib";
          };
          description = "Extra environment variables for labup and the services it starts.";
        };
      };
    }
  );

  unit = name: w: {
    name = "labup-${sanitise name}";
    value = {
      description = "labup workspace ${name}";
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      wantedBy = [ "multi-user.target" ];
      environment = {
        LABUP_NO_BROWSER = "1";
      }
      // w.environment;
      serviceConfig = {
        Type = "exec";
        User = w.user;
        WorkingDirectory = w.path;
        ExecStart = lib.concatMapStringsSep " " execWord [
          (lib.getExe w.package)
          "--project"
          w.path
          "up"
          "--foreground"
          "--no-browser"
        ];
        Restart = "on-failure";
        RestartSec = 5;
        KillMode = "mixed";
        TimeoutStopSec = w.stopTimeout + 30;
      };
    };
  };
in
{
  options.services.labup.workspaces = mkOption {
    type = types.attrsOf workspace;
    default = { };
    example = lib.literalExpression ''{ lab = { path = "/srv/lab"; user = "alice"; }; }'';
    description = "labup workspaces to keep up, one systemd unit each.";
  };

  config.systemd.services = lib.listToAttrs (
    lib.mapAttrsToList unit (lib.filterAttrs (_: w: w.enable) config.services.labup.workspaces)
  );
}
