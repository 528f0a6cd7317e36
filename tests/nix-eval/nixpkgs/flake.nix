# A stand-in for nixpkgs, for evaluating labup's flake where nixpkgs (4 GiB) cannot be
# fetched: nixpkgs' real `lib` (copied in beside this file by tests/nix_eval.rs from
# $LABUP_NIX_INPUTS/nixpkgs-lib) plus models of only the packages and builders the flake and
# crane use (pkgs/). Every derivation is a real `derivation` whose builder always fails, so
# nothing can be built by accident and an import-from-derivation fails loudly.
# Models nixpkgs' flake.nix: `lib` and `legacyPackages.<system>`.
{
  outputs =
    { self }:
    let
      lib = import ./lib;
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs lib.systems.flakeExposed (system: import self { inherit system; });
    };
}
