"""Runs one command, times it and reports its peak RSS, as one JSON line appended to a
file (bench/gpu/run.sh): name, exit status, wall seconds, the child's peak RSS, and the
last JSON object the command printed on stdout (hoist load --json, ceiling, peers.py).
The command's whole output goes to the log file.

usage: python3 timed.py RUNS.jsonl LOG NAME TIMEOUT_S CMD...
"""
import json
import os
import resource
import subprocess
import sys
import time


def main():
    runs, log, name, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    cmd = sys.argv[5:]
    t0 = time.time()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
        rc, out = p.returncode, p.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        rc, out = 124, (e.stdout or b"").decode(errors="replace") + "\n(timed out)\n"
    except OSError as e:
        rc, out = 127, str(e) + "\n"
    wall = time.time() - t0
    # children that ended: the command (and what it ran); max RSS in KiB on Linux
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    last = None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                last = json.loads(line)
            except ValueError:
                pass
    with open(log, "a") as f:
        f.write("== %s: %s\n%s\n== %s: exit %d, %.3f s\n" % (name, " ".join(cmd), out, name,
                                                            rc, wall))
    row = {"name": name, "rc": rc, "wall": round(wall, 4), "peak_rss_bytes": rss,
           "result": last, "tail": out.splitlines()[-3:] if out else []}
    with open(runs, "a") as f:
        f.write(json.dumps(row) + "\n")
    print("%-28s exit %3d  %7.3f s  peak RSS %6.2f GB" % (name, rc, wall, rss / 1e9))
    sys.exit(0)


if __name__ == "__main__":
    main()
