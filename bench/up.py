#!/usr/bin/env python3
"""Times `labup up`, in one run:

    cargo build --release && python3 bench/up.py [--runs N]

1. No-op: `labup up` with everything already running against the no-op `labup sync`
   (goal: no-op up <= 25 ms).
2. Readiness: a service that starts answering after half a second records the moment its
   socket listens; the delay until `labup up` returns reporting it ready is measured over
   repeated stop/up cycles (goal: <= 100 ms).
No network: the project has no requirements.
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

    print(f"no-op  labup sync   {noop_sync * 1000:7.1f} ms")
    print(f"no-op  labup up     {noop_up * 1000:7.1f} ms   up / sync = {noop_up / noop_sync:4.1f} (goal: up <= 25 ms)")
    print(f"ready  listen -> up returns: median {statistics.median(delays) * 1000:6.1f} ms, "
          f"max {max(delays) * 1000:6.1f} ms over {len(delays)} starts (goal <= 100 ms)")


if __name__ == "__main__":
    main()
