#!/usr/bin/env bash
# Debian's python3 (a second interpreter for the interpreter-change test, beside pyenv's),
# zsh and fish (tests/it/hook.rs sources `labup hook zsh|fish` in them), uv from PyPI.
set -euo pipefail
if ! [ -x /usr/bin/python3 ] || ! command -v zsh >/dev/null || ! command -v fish >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3 zsh fish >/dev/null
fi
python3 -m pip install --quiet --disable-pip-version-check uv
