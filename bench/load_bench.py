"""CPU load benchmark: hoist against the reference reader, with the machine's ceilings
measured in the same run. Driven by bench/run.sh; see bench/README.md.

usage: load_bench.py --dir CKPT --hoist BIN --ceiling BIN [--warm N] [--cold N] [--idle N]
                     [--pause S] [--python PY] [--threads N]
       load_bench.py --peer NAME CKPT [--recycle BYTES --ceiling BIN]
                     (one reference load, in this process)

Every loader and ceiling runs in its own process. "in-process s" is timed inside that
process around the load alone (for hoist: the report's total, which leaves out process
start; for Python: after the imports); "process s" is the whole process as seen from
outside. Runs are interleaved, each round in a shuffled order; each row gives the median.

Memory. On the development VM, free memory goes back to the host about 2 s after it
is freed, and its next first touch then costs host page faults (bench/README.md): the
same run takes 0.2 s or 3 s depending on how long the memory lay free. So every warm
and cold run starts on memory that was in use a moment before (`ceiling touch` of the
bytes the run will need, just before it; the Python loaders do it after their imports),
and the "after idle" table shows what a load meets when the memory lay free (a pause
before each run).
"""
import argparse
import json
import os
import platform
import random
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


def run_peer(name, d, recycle=0, ceiling=None):
    t_start = time.perf_counter()
    files = shard_files(d)
    keep = []
    if name in ("st_numpy_load_file", "st_numpy_safe_open"):
        from safetensors import safe_open
        from safetensors.numpy import load_file
    elif name == "st_torch_load_file_touch":
        import torch
        from safetensors.torch import load_file
    else:
        raise SystemExit(f"unknown peer {name}")
    recycle_s = 0.0
    if recycle:
        # after the imports, so the memory the load gets was in use a moment ago
        t = time.perf_counter()
        subprocess.run([ceiling, "touch", "--bytes", str(recycle)], check=True,
                       stdout=subprocess.DEVNULL)
        recycle_s = time.perf_counter() - t
    t0 = time.perf_counter()
    if name == "st_numpy_load_file":
        for f in files:
            keep += list(load_file(f).values())
        nbytes = sum(a.nbytes for a in keep)
    elif name == "st_numpy_safe_open":
        for f in files:
            with safe_open(f, framework="numpy") as h:
                keep += [h.get_tensor(k) for k in h.keys()]
        nbytes = sum(a.nbytes for a in keep)
    else:
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
    s = time.perf_counter() - t0
    print(json.dumps({"seconds": s, "bytes": nbytes, "import_seconds": t0 - t_start - recycle_s,
                      "recycle_seconds": recycle_s}))


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
    "bytes". expect_bytes: what a loader must report moving (None for ceilings).
    need: bytes of fresh memory a run takes (what `ceiling touch` recycles before it);
    peer: a Python loader, which recycles after its imports (--recycle)."""

    def __init__(self, name, cmd, expect_bytes=None, modes=("warm", "cold"), need=0, peer=False,
                 with_prefault=False):
        self.name, self.cmd, self.expect = name, cmd, expect_bytes
        self.modes, self.need, self.peer = modes, need, peer
        self.with_prefault = with_prefault  # seconds = read + the timed-apart prefault
        self.runs = {"warm": [], "cold": [], "idle": []}
        self.error = None

    def run(self, mode, ctx):
        if self.error or mode not in self.modes:
            return
        cmd = list(self.cmd)
        need = self.need + (ctx.total if mode == "cold" else 0)  # the page cache too
        if mode == "cold":
            drop_caches()
        if mode == "idle":
            time.sleep(ctx.pause)
        elif need and self.peer:
            cmd += ["--recycle", str(need), "--ceiling", ctx.ceiling]
        elif need:
            subprocess.run([ctx.ceiling, "touch", "--bytes", str(need)], check=True,
                           stdout=subprocess.DEVNULL)
        rc, out, err, wall, rss = run_with_rusage(cmd)
        j = last_json(out)
        if rc != 0 or not j or "seconds" not in j:
            msg = (err.strip().splitlines() or out.strip().splitlines() or [f"exit {rc}"])[-1]
            self.error = f"exit {rc}: {msg}"[:160]
            return
        if self.expect is not None and j.get("bytes") not in (None, self.expect):
            self.error = f"moved {j.get('bytes')} bytes, the checkpoint holds {self.expect}"
            return
        secs = j["seconds"] + (j.get("prefault_seconds", 0) if self.with_prefault else 0)
        self.runs[mode].append({"s": secs, "bytes": j.get("bytes") or self.expect,
                                "wall": wall - j.get("recycle_seconds", 0), "rss": rss, "json": j})

    def median_s(self, mode):
        return med([r["s"] for r in self.runs[mode]])

    def median_key(self, mode, key):
        return med([r["json"].get(key, 0) for r in self.runs[mode]])

    def spread(self, mode):
        return " ".join(f"{r['s']:.2f}" for r in self.runs[mode])

    def gbps(self, mode):
        runs = self.runs[mode]
        return runs[0]["bytes"] / self.median_s(mode) / 1e9 if runs else float("nan")


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_ratio(x):
    return "-" if x != x else f"{x:.2f}"


class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", nargs=2, metavar=("NAME", "CKPT"))
    ap.add_argument("--recycle", type=int, default=0)
    ap.add_argument("--dir")
    ap.add_argument("--hoist", default="build/hoist")
    ap.add_argument("--ceiling", default="build/ceiling")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--warm", type=int, default=7)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--idle", type=int, default=3)
    ap.add_argument("--pause", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=0, help="hoist --threads (0: its default)")
    a = ap.parse_args()
    if a.peer:
        run_peer(*a.peer, recycle=a.recycle, ceiling=a.ceiling)
        return
    d = a.dir
    files = shard_files(d)
    total = sum(os.path.getsize(f) for f in files)
    idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
    tensor_bytes = idx["metadata"]["total_size"]
    ncpu = os.cpu_count() or 1
    ctx = Ctx()
    ctx.total, ctx.ceiling, ctx.pause = total, os.path.abspath(a.ceiling), a.pause
    need = total + (512 << 20)  # the destination, and some slack
    loads = []

    def sample_load():
        loads.append(os.getloadavg()[0])

    sample_load()
    print("## Machine\n")
    for line in machine(d):
        print(f"- {line}")
    print(f"- checkpoint: {d}: {len(files)} shards, {len(idx['weight_map'])} tensors, "
          f"{tensor_bytes / 1e9:.2f} GB of tensor data ({total / 1e9:.2f} GB of files)")
    dropped, why = can_drop()
    cold = a.cold if dropped else 0
    print(f"- cold runs: {'page cache dropped before each (echo 3 > /proc/sys/vm/drop_caches)' if dropped else 'NOT POSSIBLE: ' + why}")
    print(f"- runs: median of {a.warm} warm" + (f", {cold} cold" if cold else "") +
          f", {a.idle} after idle; ceilings and loaders interleaved, each round in a shuffled order")
    print(f"- memory: each warm and cold run starts on memory freed a moment before "
          f"(`ceiling touch`); the after-idle runs start {a.pause:g} s after the previous "
          f"run ended (bench/README.md)")
    sys.stdout.flush()

    def plural(n):
        return f"{n} thread{'s' if n > 1 else ''}"

    c = a.ceiling
    # hoist's readers: --threads, else its default min(16, 2 x cores)
    nread = a.threads or min(16, 2 * ncpu)
    # the sim device's copy engines and the layout of its memory (src/backend_sim.c:
    # SIM_ENGINES threads, allocations striped in SIM_STRIPE pieces over one memfd each)
    sim_engines, sim_stripe = 2, "2M"
    sim_mem = ["--split", str(sim_engines), "--stripe", sim_stripe]
    W, C, I = ("warm",), ("cold",), ("idle",)
    read = [Loader(f"pread, {plural(t)}, reused 32 MiB buffers", [c, "pread", "--threads", str(t)] + files,
                   modes=W + (C if t > 1 else ()) + (I if t == nread else ()))
            for t in sorted({1, ncpu, nread})]
    fresh = Loader(f"pread, {plural(nread)}, into a fresh buffer, 4 KiB pages",
                   [c, "pread", "--threads", str(nread), "--fresh"] + files, modes=W + I, need=need)
    huge = Loader(f"pread, {plural(nread)}, into a fresh MADV_HUGEPAGE buffer (as hoist's arena)",
                  [c, "pread", "--threads", str(nread), "--huge"] + files, modes=W + C + I, need=need)
    prefault = Loader(f"pread, {plural(nread)}, MADV_HUGEPAGE buffer made present first (both timed)",
                      [c, "pread", "--threads", str(nread), "--prefault"] + files, modes=W, need=need,
                      with_prefault=True)
    direct = Loader(f"pread, {plural(nread)}, O_DIRECT, reused buffers",
                    [c, "pread", "--threads", str(nread), "--direct"] + files, modes=C)
    memfd = Loader(f"sim copy: pwrite from reused 32 MiB buffers into new sim memory, {plural(sim_engines)} "
                   f"(the sim's copy engines; {sim_stripe} stripes over {sim_engines} memfds, as the sim)",
                   [c, "memfd", "--threads", str(sim_engines), "--bytes", str(tensor_bytes)] + sim_mem,
                   modes=W + I, need=need)
    readcopy = Loader(f"read then sim copy, {plural(ncpu)} each doing both (the cores shared as in a load)",
                      [c, "readcopy", "--threads", str(ncpu)] + sim_mem + files, modes=W, need=need)
    readcopy_cold = Loader(f"read then sim copy, {plural(nread)} each doing both",
                           [c, "readcopy", "--threads", str(nread)] + sim_mem + files, modes=C, need=need)
    ceilings = read + [fresh, huge, prefault, direct, memfd, readcopy, readcopy_cold]
    memcpy = [Loader(f"memcpy, {plural(t)} (pre-touched buffers)", [c, "memcpy", "--threads", str(t), "--bytes", "1G"],
                     modes=W) for t in sorted({1, ncpu})]

    hoist_extra = ["--threads", str(a.threads)] if a.threads else []
    hcpu = Loader("hoist load --device cpu", [a.hoist, "load", d, "--device", "cpu", "--json"] + hoist_extra,
                  tensor_bytes, modes=W + C + I, need=need)
    hsim = Loader("hoist load --device sim:0", [a.hoist, "load", d, "--device", "sim:0", "--sim-capacity",
                                               str(2 * tensor_bytes + (1 << 30)), "--json"] + hoist_extra,
                  tensor_bytes, modes=W + C + I, need=need)
    peers = [Loader(label, [a.python, os.path.abspath(__file__), "--peer", peer, d], tensor_bytes,
                    modes=W + C + (I if peer == REFERENCE else ()), need=need, peer=True)
             for peer, label in PEERS.items()]
    ref = peers[0]
    loaders = [hcpu, hsim] + peers

    t_begin = time.time()
    for m in memcpy:
        m.run("warm", ctx)
    warm_files(files)
    warm_files(files)
    # Each round in its own shuffled order (seeded: the same in every run of the
    # script), so no run always follows the same one: on the VM a run is slower after
    # one that freed much memory (hoist's cold cpu load: 1.46 s after the read-then-copy
    # ceiling, 1.05 s after the fresh-buffer one, medians of 4).
    rng = random.Random(1)
    for mode, rounds in (("warm", a.warm), ("idle", a.idle), ("cold", cold)):
        for i in range(rounds):
            order = ceilings + loaders
            rng.shuffle(order)
            for x in order:
                x.run(mode, ctx)
            sample_load()
    if cold:
        warm_files(files)

    def best(mode, xs):
        v = [x.gbps(mode) for x in xs if x.runs[mode]]
        return max(v) if v else float("nan")

    def ceiling_table(mode, extra=()):
        print("| ceiling | median s | GB/s | runs (s) |")
        print("| --- | ---: | ---: | --- |")
        for x in [x for x in ceilings if mode in x.modes] + list(extra):
            if not x.runs[mode]:
                print(f"| {x.name} | failed: {x.error or 'no runs'} | | |")
                continue
            name = x.name
            if x.with_prefault:
                name += (f": made present {x.median_key(mode, 'prefault_seconds'):.3f} s, "
                         f"then read {x.median_key(mode, 'seconds'):.3f} s")
            print(f"| {name} | {x.median_s(mode):.3f} | {x.gbps(mode):.2f} | {x.spread(mode)} |")
        print()

    # Each loader's target ceiling, per mode: (GB/s, label).
    def targets(mode):
        rd = best(mode, [x for x in read if mode in x.modes] + ([direct] if mode == "cold" else []))
        fr = best(mode, [x for x in (fresh, huge) if mode in x.modes])
        cp = memfd.gbps("warm") if mode == "cold" else memfd.gbps(mode)
        sim = (min(rd, cp), "min(read, sim copy)")
        t = {hcpu.name: (fr, "read into fresh memory"), hsim.name: sim}
        for p_ in peers:
            # numpy arrays are fresh memory; torch's load_file maps the page cache
            t[p_.name] = (fr, "read into fresh memory") if "numpy" in p_.name else (rd, "read")
        return t, rd

    def loader_table(mode, goal):
        tg, rd = targets(mode)
        print(f"| loader | median s (in-process) | GB/s | target ceiling | GB/s | of target | of pread ceiling "
              f"| vs safetensors.numpy.load_file | meets the target (>= {goal:.2f} of it, faster than the reference) "
              f"| median s (process) | peak RSS GB | runs (s, in order) |")
        print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |")
        ref_s = ref.median_s(mode)
        for ld in [x for x in loaders if mode in x.modes]:
            runs = ld.runs[mode]
            if not runs:
                print(f"| {ld.name} | failed: {ld.error or 'no runs'} |")
                continue
            s_ = ld.median_s(mode)
            gbps = tensor_bytes / s_ / 1e9
            tgt, label = tg[ld.name]
            ok = "-"
            if ld.name.startswith("hoist"):
                ok = "yes" if gbps >= goal * tgt and s_ < ref_s else "no"
            print(f"| {ld.name} | {s_:.3f} | {gbps:.2f} | {label} | {tgt:.2f} | {fmt_ratio(gbps / tgt)} |"
                  f" {fmt_ratio(gbps / rd)} | {fmt_ratio(ref_s / s_)}x | {ok} |"
                  f" {med([r['wall'] for r in runs]):.3f} | {max(r['rss'] or 0 for r in runs) / 1e9:.2f} |"
                  f" {ld.spread(mode)} |")
        if hsim.runs[mode]:
            rc = readcopy if mode == "warm" else readcopy_cold
            if rc.runs[mode]:
                print(f"\nhoist load --device sim:0 against read then sim copy on the same cores "
                      f"({rc.gbps(mode):.2f} GB/s): {fmt_ratio(hsim.gbps(mode) / rc.gbps(mode))}")
        print()

    print("\n## Ceilings, warm (files in the page cache)\n")
    ceiling_table("warm", memcpy)
    if cold:
        print("## Ceilings, cold (page cache dropped before each run)\n")
        ceiling_table("cold")
    if a.idle:
        print(f"## Ceilings, warm, after idle ({a.pause:g} s pause before each run)\n")
        ceiling_table("idle")
    print("## Loads, warm\n")
    loader_table("warm", 0.85)
    if cold:
        print("## Loads, cold\n")
        loader_table("cold", 0.90)
    if a.idle:
        print(f"## Loads, warm, after idle ({a.pause:g} s pause before each run)\n")
        loader_table("idle", 0.85)
    print("Target ceilings: \"read into fresh memory\" is the faster of the two fresh-buffer "
          "pread rows (a load into new host memory pays its first-touch page faults); "
          "\"min(read, sim copy)\" is the issue's min(read, copy): the best pread row "
          "(reused buffers, as into a staging ring; cold: buffered or O_DIRECT) and the memfd "
          "row (the sim's device copy, measured warm); \"read\" is the best pread row.\n")
    for ld in (hcpu, hsim):
        for mode in ("warm", "cold", "idle"):
            if ld.runs[mode]:
                j = ld.runs[mode][-1]["json"]
                st = j.get("stream") or {}
                ph = ", ".join(f"{k} {v:.3f} s" for k, v in (j.get("phases") or {}).items())
                sb = st.get("storage_read_bytes")
                print(f"- {ld.name}, last {mode} run: {ph}; stream bound by {st.get('bound')} "
                      f"(readers in pread {100 * st.get('read_busy', 0):.0f}%, device copying "
                      f"{100 * st.get('copy_busy', 0):.0f}%), "
                      f"{'?' if sb is None else f'{sb / 1e9:.2f} GB'} read from storage, "
                      f"{st.get('threads')} readers, {st.get('direct_chunks')} of {st.get('chunks')} "
                      f"chunks read straight into the arena")
    sample_load()
    print(f"\nload average (1 min) during the run: {min(loads):.2f} to {max(loads):.2f} "
          f"(at the start {loads[0]:.2f}, at the end {loads[-1]:.2f})")
    print(f"benchmark wall time: {time.time() - t_begin:.0f} s")


if __name__ == "__main__":
    main()
