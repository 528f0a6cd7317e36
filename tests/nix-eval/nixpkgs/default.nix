# Models nixpkgs' default.nix → pkgs/top-level/impure.nix → pkgs/top-level/default.nix:
# `import nixpkgs { system; config; overlays; }`, native package sets only (no crossSystem).
# config: allowUnfree and allowUnfreePredicate (read by pkgs/stdenv.nix's meta check).
{
  system,
  config ? { },
  overlays ? [ ],
}:
import ./pkgs/top-level.nix {
  lib = import ./lib;
  inherit system config overlays;
}
