# `nix run .#<verb>`: each app runs `labup <verb>` with the caller's arguments. The app
# set itself (names, descriptions, `default`) is pure and lives in config.nix.
{
  lib,
  writeShellScript,
  pure,
  labup,
  labupLlm,
}:
let
  # A script per verb, because an app is a program path and cannot carry arguments.
  runs =
    package: suffix: verb:
    "${writeShellScript "labup-${verb}${suffix}" ''exec ${lib.getExe package} ${verb} "$@"''}";
in
pure.mkApps {
  program = runs labup "";
  llmProgram = runs labupLlm "-llm";
}
