# The pure half of the flake: read labup.toml, name the Python attribute, shape the app
# set. Builtins only (no nixpkgs, no crane), so tests/nix.rs evaluates every function here
# with a plain `nix-instantiate` on machines that cannot reach nixpkgs.
let
  inherit (builtins)
    addErrorContext
    all
    attrValues
    elemAt
    filter
    foldl'
    fromTOML
    isAttrs
    isInt
    isList
    isString
    length
    lessThan
    mapAttrs
    match
    pathExists
    readFile
    sort
    split
    typeOf
    ;

  # Every error names the file: users meet these through `nix run`/`nix develop`, far
  # from the code that threw.
  fail = msg: throw "labup.toml: ${msg}";

  describe =
    value:
    let
      type = typeOf value;
    in
    if type == "float" then
      "a number (quote it)"
    else if type == "int" then
      "an integer"
    else if type == "bool" then
      "a boolean"
    else if type == "set" then
      "a table"
    else if type == "list" then
      "a list"
    else
      "a ${type}";

  table =
    raw: key:
    let
      value = raw.${key} or { };
    in
    if isAttrs value then
      value
    else
      fail "`${key}` must be a table (`[${key}]`), not ${describe value}";

  # labup's own check is stricter about the rest of the file; the flake only needs these.
  versionPattern = "([0-9]+)\\.([0-9]+)(\\.[0-9]+)?";
  attrPathPattern = "[A-Za-z_][A-Za-z0-9_'-]*(\\.[A-Za-z_][A-Za-z0-9_'-]*)*";

  pythonVersion =
    python:
    let
      version = python.version or defaultPythonVersion;
    in
    if !isString version then
      fail "[python] version must be a string like \"3.12\", not ${describe version}"
    else if match versionPattern version == null then
      fail "[python] version \"${version}\" is not a version: write it like \"3.12\" or \"3.12.4\""
    else
      version;

  nixPackages =
    nix:
    let
      names = nix.packages or [ ];
      check =
        name:
        if !isString name then
          fail "[nix] packages: each entry is a nixpkgs attribute name (a string), not ${describe name}"
        else if match attrPathPattern name == null then
          fail "[nix] packages: \"${name}\" is not a nixpkgs attribute name (like \"ffmpeg\" or \"python312Packages.black\")"
        else
          name;
    in
    if isList names then
      map check names
    else
      fail "[nix] packages must be a list like [\"ffmpeg\"], not ${describe names}";

  projectName =
    project:
    let
      name = project.name or "labup";
    in
    if isString name then name else fail "[project] name must be a string, not ${describe name}";

  # [services.<name>] tables, only as far as the image needs them (their fixed ports).
  services =
    raw:
    let
      declared = table raw "services";
    in
    mapAttrs (
      name: service:
      if isAttrs service then
        service
      else
        fail "[services.${name}] must be a table (`[services.${name}]`), not ${describe service}"
    ) declared;

  # A derivation as nixpkgs makes them (lib.isDerivation, without nixpkgs).
  isDerivation = value: isAttrs value && (value.type or null) == "derivation";

  defaultPythonVersion = "3.12";

  verbs = {
    up = "Bring the workspace up: sync the venv, start the services, print their URLs";
    stop = "Stop the workspace's services";
    status = "Show each service's state, port and URL";
    doctor = "Check the interpreter, venv, GPU and ports, with a fix for each problem";
  };
in
rec {
  inherit defaultPythonVersion verbs;

  systems = [
    "x86_64-linux"
    "aarch64-linux"
    "aarch64-darwin"
    "x86_64-darwin"
  ];

  # labup.toml text → what the flake needs from it. Missing keys take labup's defaults.
  parseConfig =
    text:
    let
      # A syntax error stops evaluation here, with the wrong line of labup.toml shown; the
      # context names the file (Nix's own message only says `fromTOML`).
      raw = addErrorContext "while reading labup.toml (labup's settings)" (fromTOML text);
      version = pythonVersion (table raw "python");
    in
    {
      name = projectName (table raw "project");
      pythonVersion = version;
      pythonAttr = pythonAttr version;
      nixPackages = nixPackages (table raw "nix");
      services = services raw;
    };

  # labup.local.toml is deliberately not read: it is git-ignored, and a flake only sees
  # tracked files, so reading it would work in one checkout and not another.
  readConfig =
    src:
    let
      file = src + "/labup.toml";
    in
    parseConfig (if pathExists file then readFile file else "");

  # "3.12" and "3.12.4" → "python312": nixpkgs keeps one interpreter per minor version.
  pythonAttr =
    version:
    let
      parts = match versionPattern version;
    in
    if parts == null then
      throw "labup: \"${version}\" is not a Python version like \"3.12\""
    else
      "python${elemAt parts 0}${elemAt parts 1}";

  # The interpreter that settings ask for, or an error that says which attribute is missing
  # (a version this nixpkgs no longer or not yet carries).
  pythonFor =
    pkgs: settings:
    if pkgs ? ${settings.pythonAttr} then
      pkgs.${settings.pythonAttr}
    else
      fail "[python] version \"${settings.pythonVersion}\" needs nixpkgs' `${settings.pythonAttr}`, which this nixpkgs does not have";

  # "[nix] packages" names → packages, so a typo fails evaluation with its name.
  toolsFor =
    pkgs: settings:
    map (
      name:
      let
        path = filter isString (split "\\." name);
        found = foldl' (
          acc: key: if acc != null && isAttrs acc && acc ? ${key} then acc.${key} else null
        ) pkgs path;
      in
      if found == null then
        fail "[nix] packages: nixpkgs has no package `${name}`"
      else if !isDerivation found then
        fail "[nix] packages: `${name}` is ${
          if isAttrs found then "a set of packages" else describe found
        } in nixpkgs, not a package: name one of its packages (like \"${name}.<package>\")"
      else
        found
    ) settings.nixPackages;

  # A second interpreter for the interpreter-change test, never the one settings ask for.
  otherPythonAttr = settings: if settings.pythonAttr == "python313" then "python312" else "python313";

  # The ports an image of the project exposes: each service's fixed port (`port = "auto"`
  # has none to publish). Without [services.*], labup's embedded default set (`defaults`,
  # src/config/default.toml parsed), whose `app` is kept only when the project has a
  # server.py, as labup does.
  exposedPorts =
    {
      settings,
      defaults,
      hasServerPy,
    }:
    let
      chosen =
        if settings.services != { } then
          settings.services
        else if hasServerPy then
          defaults.services
        else
          removeAttrs defaults.services [ "app" ];
    in
    sort lessThan (filter isInt (map (service: service.port or null) (attrValues chosen)));

  # `program verb` is the store path of a script running `labup <verb> "$@"`; the Ollama
  # variant is separate so Ollama stays out of the default closure.
  mkApps =
    {
      program,
      llmProgram ? null,
    }:
    let
      app = description: path: {
        type = "app";
        program = path;
        meta = { inherit description; };
      };
      base = mapAttrs (verb: description: app description (program verb)) verbs;
    in
    base
    // {
      default = base.up;
    }
    // (
      if llmProgram == null then
        { }
      else
        {
          up-llm = app "${verbs.up}, with an Ollama server (CUDA on Linux, Metal on macOS)" (llmProgram "up");
        }
    );

  # Allows nixpkgs' unfree packages only when every license is free or NVIDIA's CUDA EULA:
  # the CUDA libraries ollama-cuda links, and nothing else.
  allowCudaUnfree =
    pkg:
    let
      licenses = pkg.meta.license or [ ];
      list = if isList licenses then licenses else [ licenses ];
    in
    length list > 0
    && all (license: (license.free or true) || (license.shortName or "") == "CUDA EULA") list;
}
