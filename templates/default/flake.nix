{
  description = "A Python data-science workspace brought up by labup";

  inputs.labup.url = "github:OWNER/labup";

  # Packages, apps (up, stop, status, doctor, up-llm) and the dev shell for this folder,
  # shaped by labup.toml.
  outputs = { labup, ... }: labup.lib.mkFlake { src = ./.; };
}
