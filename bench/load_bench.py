"""CPU load benchmark: hoist against the reference reader, with the machine's ceilings
measured in the same run. Driven by bench/run.sh; see bench/README.md.

usage: load_bench.py --dir CKPT --hoist BIN --ceiling BIN [--warm N] [--cold N] [--python PY]
       load_bench.py --peer NAME CKPT      (one reference load, in this process)

Every loader runs in its own process. "in-process s" is timed inside that process
around the load alone (for hoist: the report's total, which leaves out process start;
for Python: after the imports); "process s" is the whole process as seen from outside.
Runs are interleaved (loader A, B, C, A, B, C, ...) so drift hits all alike; each row
gives the median.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

# ---------------------------------------------------------------------------------
# Reference loads (run as `load_bench.py --peer NAME CKPT` in a fresh process).

PEERS = {
    "st_numpy_load_file": "safetensors.numpy.load_file",
    "st_numpy_safe_open": "safetensors safe_open(framework=\"numpy\"), every tensor",
    "st_torch_load_file_touch": "safetensors.torch.load_file + touch every page",
}
REFERENCE = "st_numpy_load_file"


def shard_files(d):
    idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
    return [os.path.join(d, f) for f in sorted(set(idx["weight_map"].values()))]


def run_peer(name, d):
    t_start = time.perf_counter()
    files = shard_files(d)
    keep = []
    if name == "st_numpy_load_file":
        from safetensors.numpy import load_file
        t0 = time.perf_counter()
        for f in files:
            keep += list(load_file(f).values())
        nbytes = sum(a.nbytes for a in keep)
    elif name == "st_numpy_safe_open":
        from safetensors import safe_open
        t0 = time.perf_counter()
        for f in files:
            with safe_open(f, framework="numpy") as h:
                keep += [h.get_tensor(k) for k in h.keys()]
        nbytes = sum(a.nbytes for a in keep)
    elif name == "st_torch_load_file_touch":
        import torch
        from safetensors.torch import load_file
        t0 = time.perf_counter()
        for f in files:
            keep += list(load_file(f).values())
        # load_file on cpu maps the file and reads nothing: touch one byte per page so
        # the bytes are in memory, as a load must leave them.
        nbytes = 0
        for t in keep:
            b = t.reshape(-1).view(torch.uint8)
            nbytes += b.numel()
            if b.numel():
                int(b[::4096].sum())
    else:
        raise SystemExit(f"unknown peer {name}")
    s = time.perf_counter() - t0
    print(json.dumps({"seconds": s, "bytes": nbytes, "import_seconds": t0 - t_start}))


# ---------------------------------------------------------------------------------
# The driver.


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:
        return ""


def machine(d):
    model = ""
    for line in sh("lscpu").splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    mem = 0
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) * 1024
    src = sh(f"findmnt -no SOURCE -T {d}") or "?"
    fstype = sh(f"findmnt -no FSTYPE -T {d}") or "?"
    dev = os.path.basename(src)
    rota = sh(f"cat /sys/block/{dev}/queue/rotational 2>/dev/null")
    dmodel = sh(f"lsblk -dno MODEL {src} 2>/dev/null")
    size = sh(f"lsblk -dno SIZE {src} 2>/dev/null")
    kind = f"rotational flag {rota or '?'} (virtio disks report 1 whatever backs them)" if rota == "1" else f"rotational flag {rota or '?'}"
    thp = sh("cat /sys/kernel/mm/transparent_hugepage/enabled")
    return [
        f"CPU: {model or platform.processor()}, {os.cpu_count()} cores",
        f"RAM: {mem / 2**30:.1f} GiB",
        f"kernel: {platform.release()}; transparent huge pages: {thp}",
        f"storage: {src} ({fstype}, {size or '?'}, {kind}{', ' + dmodel if dmodel else ''})",
    ]


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def can_drop():
    try:
        drop_caches()
        return True, ""
    except OSError as e:
        return False, str(e)


def warm_files(files):
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(64 << 20):
                pass


def run_with_rusage(cmd, timeout=300):
    """Runs cmd; returns (rc, stdout, stderr, wall seconds, this child's peak RSS)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Read both pipes fully, then reap with wait4 for this child's own peak RSS.
    import threading
    bufs = {"out": [], "err": []}

    def pump(stream, key):
        for chunk in iter(lambda: stream.read(65536), ""):
            bufs[key].append(chunk)

    ts = [threading.Thread(target=pump, args=(p.stdout, "out")),
          threading.Thread(target=pump, args=(p.stderr, "err"))]
    for t in ts:
        t.start()
    deadline = t0 + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            p.kill()
            pid, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(0.002)
    wall = time.perf_counter() - t0
    for t in ts:
        t.join()
    p.returncode = os.waitstatus_to_exitcode(status)
    out, err = "".join(bufs["out"]), "".join(bufs["err"])
    return p.returncode, out, err, wall, ru.ru_maxrss * 1024


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None


class Loader:
    """A loader or a ceiling measurement: a command printing JSON with "seconds" and
    "bytes". expect_bytes: what a loader must report moving (None for ceilings)."""

    def __init__(self, name, cmd, expect_bytes=None, modes=("warm", "cold"), before=None):
        self.name, self.cmd, self.expect = name, cmd, expect_bytes
        self.modes = modes
        self.runs = {"warm": [], "cold": []}
        self.error = None

    def run(self, mode):
        if self.error or mode not in self.modes:
            return
        rc, out, err, wall, rss = run_with_rusage(self.cmd)
        j = last_json(out)
        if rc != 0 or not j or "seconds" not in j:
            msg = (err.strip().splitlines() or out.strip().splitlines() or [f"exit {rc}"])[-1]
            self.error = f"exit {rc}: {msg}"[:160]
            return
        if self.expect is not None and j.get("bytes") not in (None, self.expect):
            self.error = f"moved {j.get('bytes')} bytes, the checkpoint holds {self.expect}"
            return
        self.runs[mode].append({"s": j["seconds"], "bytes": j.get("bytes") or self.expect,
                                "wall": wall, "rss": rss, "json": j})

    def median_s(self, mode):
        return med([r["s"] for r in self.runs[mode]])

    def spread(self, mode):
        return " ".join(f"{r['s']:.2f}" for r in self.runs[mode])

    def gbps(self, mode):
        runs = self.runs[mode]
        return runs[0]["bytes"] / self.median_s(mode) / 1e9 if runs else float("nan")


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_ratio(x):
    return "-" if x != x else f"{x:.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", nargs=2, metavar=("NAME", "CKPT"))
    ap.add_argument("--dir")
    ap.add_argument("--hoist", default="build/hoist")
    ap.add_argument("--ceiling", default="build/ceiling")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--warm", type=int, default=5)
    ap.add_argument("--cold", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="hoist --threads (0: its default)")
    a = ap.parse_args()
    if a.peer:
        run_peer(*a.peer)
        return
    d = a.dir
    files = shard_files(d)
    total = sum(os.path.getsize(f) for f in files)
    idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
    tensor_bytes = idx["metadata"]["total_size"]
    ncpu = os.cpu_count() or 1

    print("## Machine\n")
    for line in machine(d):
        print(f"- {line}")
    print(f"- checkpoint: {d}: {len(files)} shards, {len(idx['weight_map'])} tensors, "
          f"{tensor_bytes / 1e9:.2f} GB of tensor data ({total / 1e9:.2f} GB of files)")
    dropped, why = can_drop()
    cold = a.cold if dropped else 0
    print(f"- cold runs: {'page cache dropped before each (echo 3 > /proc/sys/vm/drop_caches)' if dropped else 'NOT POSSIBLE: ' + why}")
    print(f"- runs: median of {a.warm} warm" + (f", {cold} cold" if cold else "") +
          "; ceilings and loaders interleaved in each round\n")
    sys.stdout.flush()

    def plural(n):
        return f"{n} thread{'s' if n > 1 else ''}"

    c = a.ceiling
    ceilings = [Loader(f"pread, {plural(t)}, reused 32 MiB buffers", [c, "pread", "--threads", str(t)] + files,
                       modes=("warm",)) for t in sorted({1, ncpu, 2 * ncpu})]
    ceilings.append(Loader(f"pread, {plural(2 * ncpu)}, into a fresh buffer (page faults included)",
                           [c, "pread", "--threads", str(2 * ncpu), "--fresh"] + files, modes=("warm",)))
    ceilings.append(Loader(f"pread, {plural(2 * ncpu)}, into a fresh MADV_HUGEPAGE buffer",
                           [c, "pread", "--threads", str(2 * ncpu), "--huge"] + files, modes=("warm",)))
    ceilings += [Loader(f"pread, {plural(t)}, buffered", [c, "pread", "--threads", str(t)] + files,
                        modes=("cold",)) for t in sorted({ncpu, 2 * ncpu})]
    ceilings.append(Loader(f"pread, {plural(2 * ncpu)}, O_DIRECT",
                           [c, "pread", "--threads", str(2 * ncpu), "--direct"] + files, modes=("cold",)))
    memcpy = [Loader(f"memcpy, {plural(t)} (pre-touched buffers)", [c, "memcpy", "--threads", str(t), "--bytes", "1G"],
                     modes=("warm",)) for t in sorted({1, ncpu})]

    hoist_extra = ["--threads", str(a.threads)] if a.threads else []
    loaders = [
        Loader("hoist load --device cpu", [a.hoist, "load", d, "--device", "cpu", "--json"] + hoist_extra,
               tensor_bytes),
        Loader("hoist load --device sim:0", [a.hoist, "load", d, "--device", "sim:0", "--sim-capacity",
                                             str(2 * tensor_bytes + (1 << 30)), "--json"] + hoist_extra,
               tensor_bytes),
    ]
    for peer, label in PEERS.items():
        loaders.append(Loader(label, [a.python, os.path.abspath(__file__), "--peer", peer, d], tensor_bytes))
    ref = loaders[2]

    t_begin = time.time()
    for m in memcpy:
        m.run("warm")
    warm_files(files)
    warm_files(files)
    for i in range(a.warm):
        for x in ceilings + loaders:
            x.run("warm")
    for i in range(cold):
        for x in ceilings + loaders:
            if "cold" in x.modes and not x.error:
                drop_caches()
                x.run("cold")

    def ceiling_table(mode, extra=()):
        print("| ceiling | median s | GB/s | runs (s) |")
        print("| --- | ---: | ---: | --- |")
        for x in [x for x in ceilings if mode in x.modes] + list(extra):
            if not x.runs[mode]:
                print(f"| {x.name} | failed: {x.error or 'no runs'} | | |")
                continue
            print(f"| {x.name} | {x.median_s(mode):.3f} | {x.gbps(mode):.2f} | {x.spread(mode)} |")
        print()

    def best(mode, pred):
        v = [x.gbps(mode) for x in ceilings if mode in x.modes and x.runs[mode] and pred(x.name)]
        return max(v) if v else float("nan")

    def loader_table(mode, ceil_gbps, ceil_label, fresh_gbps=None):
        hdr = f"| loader | median s (in-process) | GB/s | of {ceil_label} |"
        sep = "| --- | ---: | ---: | ---: |"
        if fresh_gbps is not None:
            hdr += " of fresh-buffer ceiling |"
            sep += " ---: |"
        hdr += " vs safetensors.numpy.load_file | median s (process) | peak RSS GB | runs (s, in order) |"
        sep += " ---: | ---: | ---: | --- |"
        print(hdr)
        print(sep)
        ref_s = ref.median_s(mode)
        for ld in loaders:
            runs = ld.runs[mode]
            if not runs:
                print(f"| {ld.name} | failed: {ld.error or 'no runs'} |")
                continue
            s = ld.median_s(mode)
            gbps = tensor_bytes / s / 1e9
            row = f"| {ld.name} | {s:.3f} | {gbps:.2f} | {fmt_ratio(gbps / ceil_gbps)} |"
            if fresh_gbps is not None:
                row += f" {fmt_ratio(gbps / fresh_gbps)} |"
            row += (f" {fmt_ratio(ref_s / s)}x | {med([r['wall'] for r in runs]):.3f} |"
                    f" {max(r['rss'] or 0 for r in runs) / 1e9:.2f} | {ld.spread(mode)} |")
            print(row)
        print()

    print("## Ceilings, warm (files in the page cache)\n")
    ceiling_table("warm", memcpy)
    if cold:
        print("## Ceilings, cold (page cache dropped before each run)\n")
        ceiling_table("cold")
    print("## Loads, warm\n")
    loader_table("warm", best("warm", lambda n: "reused" in n), "warm pread ceiling",
                 best("warm", lambda n: "fresh" in n))
    print("(fresh-buffer ceiling: the faster of the two fresh-buffer rows; a load into a new "
          "host arena pays those page faults, a load through a reused staging ring does not)\n")
    if cold:
        print("## Loads, cold\n")
        loader_table("cold", best("cold", lambda n: True), "cold pread ceiling")
    for ld in loaders:
        if ld.name.startswith("hoist"):
            for mode in ("warm", "cold"):
                if ld.runs[mode]:
                    j = ld.runs[mode][-1]["json"]
                    st = j.get("stream") or {}
                    ph = ", ".join(f"{k} {v:.3f} s" for k, v in (j.get("phases") or {}).items())
                    print(f"- {ld.name}, last {mode} run: {ph}; stream bound by {st.get('bound')}, "
                          f"{st.get('threads')} readers, {st.get('direct_chunks')} of {st.get('chunks')} "
                          f"chunks read straight into the arena")
    print(f"\nbenchmark wall time: {time.time() - t_begin:.0f} s")


if __name__ == "__main__":
    main()
