# Models `stdenv` for one native system:
# - pkgs/stdenv/generic/make-derivation.nix: `mkDerivation` taking attributes or a function
#   of finalAttrs; `name` from pname and version; `env` merged into the environment;
#   `passthru` (and each of its attributes), `meta`, `overrideAttrs`, `finalPackage` on the result (and on each output,
#   through nixpkgs-lib's real `extendDerivation`); `__darwinAllowLocalNetworking` kept only
#   on darwin, as the darwin sandbox profile is the only thing that reads it. The builder is
#   /bin/sh printing a message and exiting 1: nothing evaluated here can be built, and an
#   import-from-derivation fails with that message.
# - pkgs/stdenv/generic/check-meta.nix: refuses (when the output is used) a package with an
#   unfree license unless `config.allowUnfree` or `config.allowUnfreePredicate` accepts it,
#   and a package whose meta.platforms/badPlatforms exclude the host (lib.meta.availableOn).
# - pkgs/stdenv/linux and pkgs/stdenv/darwin: the platforms (lib.systems.elaborate), `cc`
#   (gcc on Linux, clang on darwin, each with its unwrapped compiler's `lib` output), `shell`.
#   Not modelled: cross-compilation, bootstrapping, setup hooks' behaviour, structured attrs.
{
  lib,
  system,
  config,
}:
let
  hostPlatform = lib.systems.elaborate system;

  failingBuilder = {
    builder = "/bin/sh";
    args = [
      "-c"
      "echo 'the nixpkgs stub of tests/nix-eval cannot build anything' >&2; exit 1"
    ];
  };

  licenseList = license: if builtins.isList license then license else [ license ];

  # check-meta.nix: the reason a package may not be used, or null.
  refusal =
    attrs:
    let
      meta = attrs.meta or { };
      name = attrs.name or "${attrs.pname}-${attrs.version}";
      unfree = lib.any (l: !(l.free or true)) (licenseList (meta.license or [ ]));
      allowed = config.allowUnfree or false || (config.allowUnfreePredicate or (_: false)) attrs;
    in
    if unfree && !allowed then
      "Package ‘${name}’ has an unfree license, refusing to evaluate (config.allowUnfree or allowUnfreePredicate)."
    else if !lib.meta.availableOn hostPlatform attrs then
      "Package ‘${name}’ is not available on the requested hostPlatform ${hostPlatform.system}."
    else
      null;

  fromAttrs =
    attrs: overrideAttrs: finalPackage:
    let
      name = attrs.name or "${attrs.pname}-${attrs.version}";
      env = attrs.env or { };
      reason = refusal attrs;
      drvAttrs =
        removeAttrs attrs [
          "meta"
          "passthru"
          "env"
          "name"
          "__darwinAllowLocalNetworking"
        ]
        // lib.optionalAttrs (hostPlatform.isDarwin && attrs ? __darwinAllowLocalNetworking) {
          inherit (attrs) __darwinAllowLocalNetworking;
        }
        // env
        // failingBuilder
        // {
          inherit name;
          system = hostPlatform.system;
          outputs = attrs.outputs or [ "out" ];
        };
      meta = {
        inherit name;
        available = reason == null;
      }
      // attrs.meta or { };
    in
    lib.extendDerivation (reason == null || throw reason) (
      {
        inherit meta overrideAttrs finalPackage;
        passthru = attrs.passthru or { };
      }
      // attrs.passthru or { }
    ) (derivation drvAttrs);

  # make-derivation.nix's makeDerivationExtensible: the attributes are a fixed point, so
  # overrideAttrs and finalAttrs see the final values.
  extensible =
    rattrs:
    let
      finalAttrs = rattrs (finalAttrs // { inherit finalPackage; });
      finalPackage = fromAttrs finalAttrs overrideAttrs finalPackage;
      overrideAttrs =
        f0:
        let
          f =
            self: super:
            let
              x = f0 super;
            in
            if builtins.isFunction x then f0 self super else x;
        in
        extensible (
          self:
          let
            super = rattrs self;
          in
          super // f self super
        );
    in
    finalPackage;

  mkDerivation =
    fnOrAttrs: extensible (if builtins.isFunction fnOrAttrs then fnOrAttrs else _: fnOrAttrs);

  compiler =
    pname:
    mkDerivation {
      inherit pname;
      version = "0-stub";
      outputs = [
        "out"
        "lib"
      ];
    };
in
{
  inherit mkDerivation hostPlatform;
  buildPlatform = hostPlatform;
  targetPlatform = hostPlatform;
  shell = "/bin/sh";
  isLinux = hostPlatform.isLinux;
  isDarwin = hostPlatform.isDarwin;
  cc = mkDerivation {
    pname = if hostPlatform.isDarwin then "clang-wrapper" else "gcc-wrapper";
    version = "0-stub";
    passthru = {
      cc = compiler (if hostPlatform.isDarwin then "clang" else "gcc");
      isClang = hostPlatform.isDarwin;
      isGNU = !hostPlatform.isDarwin;
    };
  };
}
