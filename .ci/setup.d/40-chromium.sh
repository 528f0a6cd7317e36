#!/usr/bin/env bash
# Debian's chromium: tests/it/jupyter.rs (`engine_…`) opens the token URL labup prints in
# headless Chromium and checks that JupyterLab renders (not its login page) with the project
# kernel in the launcher. Installed once; the apt lock may be held by another install, so retry.
set -euo pipefail
command -v chromium >/dev/null && exit 0
for i in 1 2 3 4 5 6; do
  if timeout 600 apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; then exit 0; fi
  timeout 300 apt-get update -qq >/dev/null 2>&1 || true
  sleep $((i * 5))
done
echo "40-chromium.sh: could not install chromium" >&2
exit 1
