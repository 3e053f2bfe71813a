#!/usr/bin/env python3
"""verify_bench.py - the speed of `hoist verify` against a load plus one read of the files.

The issue's target: verify runs at 80% or more of the speed of a load plus one read of
the files. In each round, in an order shuffled per round (seeded), this times

  load     `hoist load CKPT --device D --json`: the report's seconds (all phases);
  read     `ceiling pread --threads N FILES`: every byte of the shards once, on the
           load's default reader count, into reused buffers (the page cache, warm);
  verify   `hoist verify CKPT --device D --json`: its load_seconds + verify_seconds,

all in-process times (process start-up left out of each alike), and prints the
medians and the ratio (load + read) / verify: the speed of verify as a share of the
speed of a load plus a read. Run by bench/verify.sh.
"""
import argparse
import glob
import json
import os
import random
import statistics
import subprocess
import sys


def run_json(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit("verify_bench: %s exited %d: %s" % (" ".join(cmd), p.returncode, p.stderr))
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--hoist", default="build/hoist")
    ap.add_argument("--ceiling", default="build/ceiling")
    ap.add_argument("--devices", default="cpu,sim:0")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    shards = sorted(glob.glob(os.path.join(args.dir, "*.safetensors")))
    readers = min(16, 2 * os.cpu_count())
    nbytes = sum(os.path.getsize(s) for s in shards)
    # warm the page cache once, untimed
    run_json([args.ceiling, "pread", "--threads", str(readers)] + shards)
    rng = random.Random(10)
    rows = []
    for dev in args.devices.split(","):
        t = {"load": [], "read": [], "verify": [], "verify_load": [], "verify_check": []}
        for _ in range(args.rounds):
            steps = ["load", "read", "verify"]
            rng.shuffle(steps)
            for s in steps:
                if s == "load":
                    j = run_json([args.hoist, "load", args.dir, "--device", dev, "--json"])
                    t["load"].append(j["seconds"])
                elif s == "read":
                    j = run_json([args.ceiling, "pread", "--threads", str(readers)] + shards)
                    t["read"].append(j["seconds"])
                else:
                    j = run_json([args.hoist, "verify", args.dir, "--device", dev, "--json"])
                    if j["differ"] != 0:
                        sys.exit("verify_bench: %d tensors differ on %s" % (j["differ"], dev))
                    t["verify_load"].append(j["load_seconds"])
                    t["verify_check"].append(j["verify_seconds"])
                    t["verify"].append(j["load_seconds"] + j["verify_seconds"])
        med = {k: statistics.median(v) for k, v in t.items()}
        ratio = (med["load"] + med["read"]) / med["verify"]
        rows.append((dev, med, ratio))
    print("checkpoint: %s, %d shards, %.2f GB; %d rounds per device, medians (s); "
          "readers %d" % (args.dir, len(shards), nbytes / 1e9, args.rounds, readers))
    print()
    print("| device | load | one read | load + read | verify (load + check) | "
          "verify speed / (load + read) speed | target >= 0.80 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for dev, m, ratio in rows:
        print("| %s | %.3f | %.3f | %.3f | %.3f (%.3f + %.3f) | %.2f | %s |" % (
            dev, m["load"], m["read"], m["load"] + m["read"], m["verify"], m["verify_load"],
            m["verify_check"], ratio, "met" if ratio >= 0.8 else "NOT met"))


if __name__ == "__main__":
    main()
