#!/usr/bin/env python3
"""Times labup's sync against uv and pip on the same 300+ pin lock, in one run.

    cargo build --release && python3 bench/sync-noop.py [--runs N] [--keep DIR]

1. Resolves a data-science stack (jupyterlab, pandas, matplotlib, python-fasthtml and more,
   about 300 pins, from PyPI) with `labup lock`.
2. Cold: `labup sync` into a missing venv vs `uv venv` + `uv pip sync` into a fresh one
   (both with the warm uv cache the first step filled).
3. No-op on the synced venv: `labup sync` vs `uv pip sync` of the same lock vs
   `pip install -r` of the same lock.
Prints the median of each and the ratios. Goals: no-op <= 10 ms, >= 20x faster than the uv
no-op, >= 200x faster than the pip no-op; cold within 1.2x of plain uv.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from common import LABUP, ROOT, real_python, run, timed
# 300+ pins once resolved: the data-science stack the old flakes installed, and then some.
REQUIREMENTS = "\n".join("""
jupyterlab jupyter ipywidgets pandas polars matplotlib seaborn plotly bokeh altair
python-fasthtml scikit-learn statsmodels sympy networkx numba xarray dask[complete]
tables h5py openpyxl opencv-python-headless nltk streamlit gradio sphinx sqlalchemy sqlmodel
fastapi[standard] flask django celery httpx requests boto3 scrapy pydantic-settings rich typer
black ruff mypy pytest
""".split()) + "\n"





def ms(seconds):
    return f"{seconds * 1000:9.1f} ms"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--keep", help="project folder to reuse (kept afterwards)")
    args = ap.parse_args()
    if not os.path.exists(LABUP):
        sys.exit("build first: cargo build --release")
    uv = shutil.which("uv") or sys.exit("uv is needed: pip install uv")
    python = real_python()
    project = args.keep or tempfile.mkdtemp(prefix="labup-bench-")
    os.makedirs(project, exist_ok=True)
    env = dict(os.environ, LABUP_PYTHON=python, LABUP_UV=uv, UV_PYTHON_DOWNLOADS="never", NO_COLOR="1")
    env.pop("VIRTUAL_ENV", None)
    with open(os.path.join(project, "requirements.txt"), "w") as f:
        f.write(REQUIREMENTS)

    print(f"project: {project}", file=sys.stderr)
    run([LABUP, "lock"], project, env, quiet=False)
    lock = os.path.join(project, "requirements.lock")
    pins = sum(1 for line in open(lock) if line and line[0].isalnum())
    # Warm the cache once through labup itself.
    run([LABUP, "sync"], project, env, quiet=False)

    venv = os.path.join(project, ".venv")
    cold_runs = max(3, args.runs // 5)
    labup_cold, uv_cold = [], []
    for _ in range(cold_runs):
        shutil.rmtree(venv)
        start = time.perf_counter()
        run([LABUP, "sync"], project, env)
        labup_cold.append(time.perf_counter() - start)
        other = os.path.join(project, "uv-venv")
        shutil.rmtree(other, ignore_errors=True)
        start = time.perf_counter()
        run([uv, "venv", "--quiet", "--python", python, other], project, env)
        run([uv, "pip", "sync", "--quiet", "--python", os.path.join(other, "bin", "python"), lock], project, env)
        uv_cold.append(time.perf_counter() - start)
    shutil.rmtree(os.path.join(project, "uv-venv"), ignore_errors=True)
    labup_cold, uv_cold = statistics.median(labup_cold), statistics.median(uv_cold)

    labup_noop = timed([LABUP, "sync"], project, env, args.runs)
    uv_noop = timed([uv, "pip", "sync", "--quiet", "--python", os.path.join(venv, "bin", "python"), lock],
                    project, env, args.runs)
    pip_noop = timed([python, "-m", "pip", "--python", os.path.join(venv, "bin", "python"), "install",
                      "--quiet", "--disable-pip-version-check", "--no-deps", "-r", lock],
                     project, env, max(3, args.runs // 4))

    print(f"lock: {pins} pins ({lock})")
    print(f"no-op  labup sync            {ms(labup_noop)}")
    print(f"no-op  uv pip sync           {ms(uv_noop)}   labup is {uv_noop / labup_noop:6.1f}x faster (goal >= 20x)")
    print(f"no-op  pip install -r        {ms(pip_noop)}   labup is {pip_noop / labup_noop:6.1f}x faster (goal >= 200x)")
    print(f"cold   labup sync            {ms(labup_cold)}")
    print(f"cold   uv venv + uv pip sync {ms(uv_cold)}   labup / uv = {labup_cold / uv_cold:4.2f} (goal <= 1.2)")
    if not args.keep:
        shutil.rmtree(project)


if __name__ == "__main__":
    main()
