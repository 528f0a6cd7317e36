#!/usr/bin/env python3
"""Times `labup up`, in one run:

    cargo build --release && python3 bench/up.py [--runs N]

1. No-op: `labup up` with everything already running against the no-op `labup sync`
   (goal: no-op up <= 25 ms).
2. Readiness: a service that starts answering after half a second records the moment its
   socket listens; the delay until `labup up` returns reporting it ready is measured over
   repeated stop/up cycles (goal: <= 100 ms).
3. Twenty services: with 20 running, no-op `labup up` and `labup status --json` (goal: each
   <= 25 ms; the one-service project's `status --json` is the baseline), and `labup up` of the
   20 from stopped against the slowest service's own start, which each service measures from
   its process start to its socket listening (goal: up <= slowest own start + 200 ms). Linux:
   the services read their start from /proc.
No network: the projects have no requirements.
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

SERVICE = r'''
import os, socket, time, http.server
time.sleep(0.5)
server = http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), http.server.SimpleHTTPRequestHandler)
with open("listening.txt", "w") as f:
    f.write(repr(time.time()))
server.serve_forever()
'''

# One of the twenty: how long it took from its process start to listening, on the boot clock.
MANY_SERVICE = r'''
import os, time, http.server
server = http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), http.server.SimpleHTTPRequestHandler)
with open("/proc/self/stat") as f:
    ticks = int(f.read().rsplit(")", 1)[1].split()[19])
own = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
with open(f"own-start-{os.environ['PORT']}.txt", "w") as f:
    f.write(repr(own))
server.serve_forever()
'''
MANY = 20


def many_services(env, runs):
    """(no-op up, status --json, [(up from stopped, slowest own start)]) with MANY services."""
    project = tempfile.mkdtemp(prefix="labup-bench-up20-")
    with open(os.path.join(project, "service.py"), "w") as f:
        f.write(MANY_SERVICE)
    with open(os.path.join(project, "labup.toml"), "w") as f:
        for i in range(MANY):
            f.write(f'[services.s{i:02}]\ncommand = ["python", "service.py"]\nport = "auto"\nready = {{ http = "/" }}\n\n')
    try:
        run([LABUP, "up"], project, env)
        noop_up = timed([LABUP, "up"], project, env, runs)
        status = timed([LABUP, "status", "--json"], project, env, runs)
        starts = []
        for _ in range(3):
            run([LABUP, "stop"], project, env)
            for name in os.listdir(project):
                if name.startswith("own-start-"):
                    os.remove(os.path.join(project, name))
            begin = time.perf_counter()
            run([LABUP, "up"], project, env)
            took = time.perf_counter() - begin
            owns = []
            for name in os.listdir(project):
                if name.startswith("own-start-"):
                    with open(os.path.join(project, name)) as f:
                        owns.append(float(f.read()))
            if len(owns) != MANY:
                sys.exit(f"{len(owns)} of {MANY} services recorded their start")
            starts.append((took, max(owns)))
        run([LABUP, "stop"], project, env)
    finally:
        subprocess.run([LABUP, "stop"], cwd=project, env=env, capture_output=True)
        shutil.rmtree(project, ignore_errors=True)
    return noop_up, status, starts





def main():
    args = args_with_runs(20)
    python = real_python()
    project = tempfile.mkdtemp(prefix="labup-bench-up-")
    env = dict(os.environ, LABUP_PYTHON=python, NO_COLOR="1")
    env.pop("VIRTUAL_ENV", None)
    with open(os.path.join(project, "service.py"), "w") as f:
        f.write(SERVICE)
    with open(os.path.join(project, "labup.toml"), "w") as f:
        f.write('[services.web]\ncommand = ["python", "service.py"]\nport = "auto"\nready = { http = "/" }\n')
    try:
        run([LABUP, "up"], project, env)
        noop_up = timed([LABUP, "up"], project, env, args.runs)
        noop_sync = timed([LABUP, "sync"], project, env, args.runs)
        status_one = timed([LABUP, "status", "--json"], project, env, args.runs)

        delays = []
        for _ in range(max(5, args.runs // 2)):
            run([LABUP, "stop"], project, env)
            os.remove(os.path.join(project, "listening.txt"))
            run([LABUP, "up"], project, env)
            done = time.time()
            with open(os.path.join(project, "listening.txt")) as f:
                delays.append(done - float(f.read()))
        run([LABUP, "stop"], project, env)
    finally:
        subprocess.run([LABUP, "stop"], cwd=project, env=env, capture_output=True)
        shutil.rmtree(project, ignore_errors=True)
    many_up, many_status, many_starts = many_services(env, args.runs)

    print(f"no-op  labup sync   {noop_sync * 1000:7.1f} ms")
    print(f"no-op  labup up     {noop_up * 1000:7.1f} ms   up / sync = {noop_up / noop_sync:4.1f} (goal: up <= 25 ms)")
    print(f"ready  listen -> up returns: median {statistics.median(delays) * 1000:6.1f} ms, "
          f"max {max(delays) * 1000:6.1f} ms over {len(delays)} starts (goal <= 100 ms)")
    print(f"{MANY} services: no-op labup up     {many_up * 1000:7.1f} ms   "
          f"/ no-op sync = {many_up / noop_sync:4.1f} (goal: <= 25 ms)")
    print(f"{MANY} services: labup status --json {many_status * 1000:7.1f} ms   "
          f"/ one service's = {many_status / status_one:4.1f} ({status_one * 1000:.1f} ms; goal: <= 25 ms)")
    for took, own in many_starts:
        print(f"{MANY} services: up from stopped {took * 1000:7.1f} ms, slowest own start {own * 1000:6.1f} ms, "
              f"labup's cost {(took - own) * 1000:6.1f} ms (goal <= 200 ms)")


if __name__ == "__main__":
    main()
