#!/usr/bin/env bash
# bench/gpu/run.sh - one GPU session, one command: build, run the GPU tests, make the
# 16.6 GB Qwen2-VL-7B-shaped checkpoint, measure the machine's ceilings, time hoist
# (warm: median of 3; cold: page cache dropped) and the peers, and write a markdown
# table to $OUT/results.md. Budget: about 5 minutes of a 15-minute device session.
#
# Before the run, the caller copies the shared GPU helpers into the repository's
# git-ignored .gpu/ folder so they travel with the working tree:
#     mkdir -p .gpu && cp ../shared/gpu/* .gpu/
# and runs, on the GPU machine:  bash bench/gpu/run.sh
# (device tool: command "bash bench/gpu/run.sh", carry [".gpu"]).
#
# Status: written on a machine without a GPU; never run yet. Each step has a timeout
# and a failure is recorded in the table instead of ending the run.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
OUT=${OUT:-/tmp/hoist-gpu-bench}
CKPT=${CKPT:-/tmp/hoist-qwen2-vl-7b}
PY=${PY:-python3}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
: >"$LOG"
say() { echo "== $(date +%T) $*" | tee -a "$LOG"; }
# run NAME SECONDS CMD...: output to $OUT/NAME.txt; status recorded in $OUT/status.txt
run() {
	local name=$1 secs=$2
	shift 2
	say "$name: $*"
	local t0 t1
	t0=$(date +%s.%N)
	timeout "$secs" "$@" >"$OUT/$name.txt" 2>&1
	local rc=$?
	t1=$(date +%s.%N)
	echo "$name $rc" >>"$OUT/status.txt"
	awk -v n="$name" -v a="$t0" -v b="$t1" 'BEGIN { printf "%s %.3f\n", n, b - a }' >>"$OUT/wall.txt"
	tail -n 3 "$OUT/$name.txt" | tee -a "$LOG"
	return $rc
}
: >"$OUT/status.txt"
: >"$OUT/wall.txt"
nvidia-smi -L >"$OUT/gpu.txt" 2>&1 || true

run build 240 make -j"$(nproc)"
run test_cuda 240 make check TESTS=cuda
run ceiling_build 60 cc -O2 -std=c11 -D_GNU_SOURCE -Isrc -o build/ceiling bench/gpu/ceiling.c -ldl -pthread

if [ ! -f "$CKPT/model.safetensors.index.json" ]; then
	run make_checkpoint 180 "$PY" .gpu/make_checkpoint.py "$CKPT"
fi
mapfile -t SHARDS < <(ls "$CKPT"/*.safetensors)
BYTES=$(du -cb "${SHARDS[@]}" | tail -n 1 | cut -f 1)

warm() { cat "${SHARDS[@]}" >/dev/null; }
cold() { sync && echo 3 >/proc/sys/vm/drop_caches; }

# Ceilings: page cache -> pinned memory (16 pread threads), pinned -> GPU.
warm
run ceiling_pread 120 build/ceiling pread 16 33554432 "${SHARDS[@]}"
run ceiling_htod 60 build/ceiling htod 8589934592 4

# hoist, warm: three runs, the median is reported.
for i in 1 2 3; do
	warm
	run "hoist_warm_$i" 120 build/hoist load "$CKPT" --device cuda:0 --json
done
# hoist, cold: page cache dropped, O_DIRECT readers.
if cold 2>/dev/null; then
	run hoist_cold 180 build/hoist load "$CKPT" --device cuda:0 --direct --json
	cold
	run ceiling_cold 180 build/ceiling pread 16 33554432 "${SHARDS[@]}"
else
	say "cannot drop the page cache (not root?): no cold runs"
fi
# The verified load (every byte read back) once, for correctness on the real GPU.
warm
run hoist_report 120 build/hoist load "$CKPT" --device cuda:0 --verbose

# Peers, warm, each in its own process.
for loader in hf_cuda st_load_file; do
	warm
	run "peer_$loader" 240 "$PY" .gpu/peers.py "$CKPT" "$loader"
done

"$PY" - "$OUT" "$BYTES" <<'PYEOF' >"$OUT/results.md"
import json, os, statistics, sys
out, nbytes = sys.argv[1], int(sys.argv[2])
def last_json(name):
    try:
        lines = [l for l in open(os.path.join(out, name + ".txt")) if l.startswith("{")]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None
status = dict(l.split() for l in open(os.path.join(out, "status.txt")) if l.strip())
wall = {k: float(v) for k, v in (l.split() for l in open(os.path.join(out, "wall.txt")) if l.strip())}
rows = []
def row(what, secs, gbps, note=""):
    rows.append(f"| {what} | {secs} | {gbps} | {note} |")
for n in ("ceiling_pread", "ceiling_htod", "ceiling_cold"):
    j = last_json(n)
    if j:
        row(j["what"] + (" (cold)" if n == "ceiling_cold" else ""), f'{j["seconds"]:.3f}', f'{j["GBps"]:.2f}')
warm = [last_json(f"hoist_warm_{i}") for i in (1, 2, 3)]
warm = [w for w in warm if w]
if warm:
    med = statistics.median(w["phases"]["stream"] + w["phases"]["allocate"] + w["phases"]["finalize"] + w["phases"]["plan"] for w in warm)
    w0 = sorted(warm, key=lambda w: w["seconds"])[len(warm) // 2]
    row("hoist load --device cuda:0, warm (median of %d; plan includes CUDA context)" % len(warm),
        f"{med:.3f}", f"{w0['bytes'] / med / 1e9:.2f}", "bound by " + w0["stream"]["bound"])
    proc = statistics.median(wall[f"hoist_warm_{i}"] for i in (1, 2, 3) if f"hoist_warm_{i}" in wall)
    row("whole `hoist load` process, warm (median wall clock)", f"{proc:.3f}", f"{w0['bytes'] / proc / 1e9:.2f}",
        "target < 1.5 s")
    st = statistics.median(w["phases"]["stream"] for w in warm)
    row("hoist stream phase alone, warm (median)", f"{st:.3f}", f"{w0['bytes'] / st / 1e9:.2f}",
        "readers %.0f%%, staging wait %.0f%%, copy %.0f%%" % (100 * w0["stream"]["read_busy"],
        100 * w0["stream"]["staging_wait"], 100 * w0["stream"]["copy_busy"]))
c = last_json("hoist_cold")
if c:
    s = c["seconds"] - c["phases"]["open"]
    row("hoist load --device cuda:0 --direct, cold", f"{s:.3f}", f"{c['bytes'] / s / 1e9:.2f}",
        "bound by " + c["stream"]["bound"])
for p in ("hf_cuda", "st_load_file"):
    j = last_json("peer_" + p)
    if j:
        row(p + " (warm)", f'{j["seconds"]:.3f}', f'{j["GBps"]:.2f}', f'peak RSS {j["peak_rss_GB"]} GB')
print("# hoist on the GPU machine\n")
print(f"Checkpoint: Qwen2-VL-7B layout, {nbytes / 1e9:.2f} GB of shard files.\n")
print("| what | seconds | GB/s | note |\n| --- | --- | --- | --- |")
print("\n".join(rows))
print("\nStep status (exit codes): " + ", ".join(f"{k}={v}" for k, v in status.items()))
PYEOF
say "results in $OUT/results.md"
cat "$OUT/results.md"
