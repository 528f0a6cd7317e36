# Models pkgs/top-level/stage.nix and pkgs/top-level/splice.nix for a native build: one
# package set, fixed point of the base set and the overlays (applied in order, as
# `lib.extends` in stage.nix); callPackage/newScope through nixpkgs-lib's real
# `callPackageWith` (so a missing argument fails as it does in nixpkgs, and `.override`
# exists); the pkgsBuildBuild…pkgsTargetTarget sets all equal to the set itself, and
# `splicePackages` returning pkgsHostTarget, which is what splice.nix does when build and
# host platforms are equal (`actuallySplice` false).
{
  lib,
  system,
  config,
  overlays,
}:
let
  base =
    self:
    let
      stdenv = import ./stdenv.nix { inherit lib system config; };
      callPackage = lib.callPackageWith self;
    in
    {
      inherit lib config stdenv;
      inherit (stdenv) hostPlatform buildPlatform targetPlatform;
      system = stdenv.hostPlatform.system;
      pkgs = self;
      buildPackages = self;
      targetPackages = self;
      pkgsBuildBuild = self;
      pkgsBuildHost = self;
      pkgsBuildTarget = self;
      pkgsHostHost = self;
      pkgsHostTarget = self;
      pkgsTargetTarget = self;

      inherit callPackage;
      newScope = extra: lib.callPackageWith (self // extra);
      splicePackages = { pkgsHostTarget, ... }: pkgsHostTarget;
      "makeScopeWithSplicing'" = lib.makeScopeWithSplicing' {
        inherit (self) splicePackages newScope;
      };
    }
    // import ./builders.nix { inherit lib self stdenv; }
    // import ./packages.nix { inherit lib stdenv; };
in
lib.fix (lib.foldl' (lib.flip lib.extends) base overlays)
