#!/usr/bin/env python3
"""Times `labup hook bash`, in one run:

    cargo build --release && python3 bench/hook.py [--runs N]

The hook runs on every shell entry (`nix develop`, a hook in .bashrc), so it must be instant
(goal: <= 5 ms). It is timed on a synced project with requirements (the stale-venv check hashes
them) and a library path (the wrapper check), against two baselines measured in the same run:
`true` (the cost of starting any process here) and `labup status` (labup's lightest command).
No network: the requirements install from fixture wheels.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from common import LABUP, ROOT, args_with_runs, real_python, run, timed





def main():
    args = args_with_runs(50)
    python = real_python()
    project = tempfile.mkdtemp(prefix="labup-bench-hook-")
    wheels = os.path.join(project, "wheels")
    run([python, os.path.join(ROOT, "tests", "fixtures", "make_wheels.py"), wheels], project, os.environ)
    libs = os.path.join(project, "fake-store", "lib")
    os.makedirs(libs)
    env = dict(os.environ, LABUP_PYTHON=python, LABUP_LIBRARY_PATH=libs, NO_COLOR="1")
    env.pop("VIRTUAL_ENV", None)
    with open(os.path.join(project, "requirements.txt"), "w") as f:
        f.write(f"--no-index\n--find-links {wheels}\nalpha\nbeta\ngamma\ndelta\n")
    # No network: the default Jupyter (which installs jupyterlab from PyPI) is switched off.
    with open(os.path.join(project, "labup.toml"), "w") as f:
        f.write('[services.jupyter]\nkind = "jupyter"\nenabled = false\n')
    try:
        run([LABUP, "sync"], project, env)
        hook = run([LABUP, "hook", "bash"], project, env)
        if hook.stderr:
            sys.exit(f"the hook hinted on a synced project:\n{hook.stderr}")
        for _ in range(5):
            run([LABUP, "hook", "bash"], project, env)
        base = timed(["true"], project, env, args.runs)
        status = timed([LABUP, "status"], project, env, args.runs)
        hook_t = timed([LABUP, "hook", "bash"], project, env, args.runs)
        source = timed(["bash", "-c", f'eval "$({LABUP} hook bash)"; deactivate'], project, env, args.runs)
        bare_bash = timed(["bash", "-c", "true"], project, env, args.runs)
    finally:
        shutil.rmtree(project, ignore_errors=True)

    print(f"true                          {base * 1000:7.2f} ms")
    print(f"labup status                  {status * 1000:7.2f} ms   status / true = {status / base:4.1f}")
    print(f"labup hook bash               {hook_t * 1000:7.2f} ms   hook / true = {hook_t / base:4.1f}, "
          f"hook / status = {hook_t / status:4.2f} (goal: hook <= 5 ms)")
    print(f"bash: eval hook + deactivate  {(source - bare_bash) * 1000:7.2f} ms over a bare `bash -c true` "
          f"({bare_bash * 1000:.2f} ms)")


if __name__ == "__main__":
    main()
