#!/usr/bin/env bash
# JupyterHub (from PyPI, in a private venv) and configurable-http-proxy (from npm) in a cache
# folder outside the repository, for the `engine_jupyterhub_*` test (tests/it/jupyterhub.rs):
# a real hub with LocalProcessSpawner whose Spawner.cmd is `labup jupyterhub-singleuser`.
# The folder is LABUP_CI_HUB (default /var/cache/labup-ci/jupyterhub); idempotent: a folder
# that already has both programs is left alone.
set -euo pipefail
DIR=${LABUP_CI_HUB:-/var/cache/labup-ci/jupyterhub}
if [ -e "$DIR/venv/.complete" ] && [ -x "$DIR/proxy/node_modules/.bin/configurable-http-proxy" ]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
mkdir -p "$DIR"
if ! [ -e "$DIR/venv/.complete" ]; then
  rm -rf "$DIR/venv"
  python3 -m venv "$DIR/venv"
  timeout 600 "$DIR/venv/bin/pip" install --quiet --disable-pip-version-check jupyterhub
  touch "$DIR/venv/.complete"
fi
if ! [ -x "$DIR/proxy/node_modules/.bin/configurable-http-proxy" ]; then
  mkdir -p "$DIR/proxy"
  timeout 600 npm install --silent --no-audit --no-fund --prefix "$DIR/proxy" configurable-http-proxy >/dev/null
fi
"$DIR/venv/bin/jupyterhub" --version >/dev/null
"$DIR/proxy/node_modules/.bin/configurable-http-proxy" --version >/dev/null
