"""What the benchmarks share: the release binary, running a command, timing it."""

import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABUP = os.path.join(ROOT, "target", "release", "labup")


def run(cmd, cwd, env, quiet=True):
    """Runs `cmd`; exits the benchmark with its stderr when it fails."""
    out = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE if quiet else None,
                         stderr=subprocess.PIPE if quiet else None, text=True)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr}")
    return out


def timed(cmd, cwd, env, runs):
    """The median wall time of `runs` runs of `cmd`, in seconds."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        run(cmd, cwd, env)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def args_with_runs(default):
    """`--runs N` parsed; exits when the release binary is not built."""
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=default)
    args = ap.parse_args()
    if not os.path.exists(LABUP):
        sys.exit("build first: cargo build --release")
    return args


def real_python():
    """The interpreter behind `python3` (not a pyenv shim): what LABUP_PYTHON gets."""
    return subprocess.run([sys.executable, "-c", "import sys; print(sys.executable)"],
                          capture_output=True, text=True).stdout.strip()
