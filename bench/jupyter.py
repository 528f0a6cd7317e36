#!/usr/bin/env python3
"""Times JupyterLab's warm start with labup against a bare `jupyter lab`, in one run:

    cargo build --release && python3 bench/jupyter.py [--runs N]

A project with JupyterLab (from PyPI, once) is synced first; then, alternating so that both see
the same machine load, N times each:

- labup: `labup up jupyter` until it returns with Jupyter ready (no-op sync, kernelspec check,
  supervisor start, JupyterLab from the venv through labup's launcher, readiness: `/api` answers
  and the server's runtime file names the port), then `labup stop`;
- bare: `.venv/bin/jupyter-lab --no-browser` on a free port until `/api` answers (what a user
  would wait for), then SIGTERM.

Both start warm (bytecode written by earlier starts, files in the page cache). Prints medians
and the ratio (goal: labup adds <= 10%). Without a release build it uses target/debug/labup
(labup's own work is milliseconds either way; Jupyter's start is seconds).
"""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from common import LABUP, ROOT, real_python, run


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_api(port, deadline):
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=1).status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def bare_start(project, env, port):
    """Seconds from spawning `jupyter-lab` until `/api` answers; the server is stopped after."""
    cmd = [os.path.join(project, ".venv/bin/jupyter-lab"), "--no-browser", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    ok = wait_api(port, time.time() + 300)
    took = time.perf_counter() - start
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if not ok:
        sys.exit("bare jupyter lab did not answer in 300 s")
    return took


def labup_start(labup, project, env):
    """Seconds for `labup up jupyter` to return with Jupyter ready; stopped after."""
    start = time.perf_counter()
    run([labup, "up", "jupyter", "--no-browser"], project, env)
    took = time.perf_counter() - start
    run([labup, "stop"], project, env)
    return took


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    labup = LABUP if os.path.exists(LABUP) else os.path.join(ROOT, "target", "debug", "labup")
    if not os.path.exists(labup):
        sys.exit("build first: cargo build --release")
    project = tempfile.mkdtemp(prefix="labup-bench-jupyter-")
    port = free_port()
    with open(os.path.join(project, "labup.toml"), "w") as f:
        f.write(f'[services.jupyter]\nkind = "jupyter"\nport = {port}\n')
    env = dict(os.environ, LABUP_PYTHON=real_python(), LABUP_NO_BROWSER="1", NO_COLOR="1")
    # A separate Jupyter home for the bare runs' own runtime files and the labup runs alike.
    env["JUPYTER_RUNTIME_DIR"] = os.path.join(project, "bare-runtime")
    try:
        run([labup, "sync"], project, env)
        # One start of each first: bytecode compiled, files cached (a warm start is measured).
        labup_start(labup, project, env)
        bare_start(project, env, port)
        ours, bare = [], []
        for i in range(args.runs):
            if i % 2 == 0:
                ours.append(labup_start(labup, project, env))
                bare.append(bare_start(project, env, port))
            else:
                bare.append(bare_start(project, env, port))
                ours.append(labup_start(labup, project, env))
        o, b = statistics.median(ours), statistics.median(bare)
        print(f"binary: {labup}")
        print(f"bare jupyter lab to /api        {b:7.2f} s  (runs: {', '.join(f'{x:.2f}' for x in bare)})")
        print(f"labup up jupyter to ready       {o:7.2f} s  (runs: {', '.join(f'{x:.2f}' for x in ours)})")
        print(f"labup / bare = {o / b:.3f} (goal: <= 1.10)")
    finally:
        subprocess.run([labup, "stop"], cwd=project, env=env, capture_output=True)
        shutil.rmtree(project, ignore_errors=True)


if __name__ == "__main__":
    main()
