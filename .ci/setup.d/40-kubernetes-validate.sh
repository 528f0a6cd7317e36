#!/usr/bin/env bash
# kubernetes-validate (PyPI) in a private venv, for tests/it/export_kubernetes.rs: the
# official Kubernetes JSON schemas (1.25.0 … 1.37.0, offline), which check the manifests
# `labup export kubernetes` writes (`--strict` catches misspelled fields). The tests find it
# at /opt/labup-ci/kubernetes-validate/bin/kubernetes-validate.
set -euo pipefail
venv=/opt/labup-ci/kubernetes-validate
if ! "$venv/bin/kubernetes-validate" --version >/dev/null 2>&1; then
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian's python3 makes venvs only with python3-venv.
    rm -rf "$venv"
    timeout 300 apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  timeout 300 "$venv/bin/pip" install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.0'
fi
"$venv/bin/kubernetes-validate" --version >/dev/null
