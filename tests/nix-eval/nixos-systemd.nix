# Models the part of NixOS that labup's module sets: `systemd.services.<name>` from
# nixos/modules/system/boot/systemd.nix (options declared in
# nixos/lib/systemd-unit-options.nix): the unit's description and ordering (after, wants,
# wantedBy), `environment`, and `serviceConfig` (the [Service] section's keys, each a
# bool, integer, string or list of them). Only these options exist here, so a misspelled
# option in labup's module fails its evaluation, as it would on NixOS. Not modelled: the
# unit files NixOS writes from them, users, assertions.
{ lib, ... }:
let
  inherit (lib) mkOption types;
  value = types.oneOf [
    types.bool
    types.int
    types.str
  ];
  service = types.submodule {
    options = {
      description = mkOption {
        type = types.str;
        default = "";
      };
      after = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      wants = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      wantedBy = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      environment = mkOption {
        type = types.attrsOf (types.nullOr types.str);
        default = { };
      };
      serviceConfig = mkOption {
        type = types.attrsOf (types.either value (types.listOf value));
        default = { };
      };
    };
  };
in
{
  options.systemd.services = mkOption {
    type = types.attrsOf service;
    default = { };
  };
}
