#!/usr/bin/env bash
# bench/gpu/run.sh - one GPU session, one command, on a fresh H200 machine where nothing
# can be installed: build hoist (from source with the -dev packages carried in .gpu/debs,
# or the binaries in .gpu/bin where there is no compiler) and the Python extension (from
# source where this Python has Python.h, else the one prepared in .gpu/python), run the
# CUDA tests against the real driver (a test that needs a GPU and skips is a failure),
# write the 16.6 GB Qwen2-VL-7B checkpoint with `hoist synth --from` its shard headers,
# then measure, the most important first: the ceilings (page cache -> pinned pread,
# pinned -> GPU copy, and the two at once), hoist warm (median of 3) with peak RSS, a
# bit-exact --verify of every byte, the peers (safetensors.torch.load_file(device=
# "cuda"), transformers from_pretrained(device_map="cuda")), the Python path
# (bench/gpu/python_step.py: the checkpoint's values given a fixed exponent in place, as
# synth's random bytes hold Inf and NaN; hoist.load to cuda:0 from Python, median of 5,
# every tensor compared with the file; a Qwen2-VL-7B-shaped model filled by
# hoist.transformers.from_pretrained and by transformers' from_pretrained, one forward
# pass each, logits compared bit for bit), hoist cold, and a sweep of chunk size,
# readers and source, all on the same files. One overall deadline (DEADLINE seconds,
# default 480); every step's timeout fits in what is left, and results are
# written as they come.
#
# Before the session, on the development machine: bash bench/gpu/prepare.sh (fills the
# git-ignored .gpu/), and copy .gpu/ with the checkout to the GPU machine; there, run
# "bash bench/gpu/run.sh" from the repository. PY (default python3) is the Python with
# torch, transformers and safetensors; PYEXT=prebuilt takes .gpu/python's extension
# even where one could be built.
#
# Output: at most 6 files in $OUT (default /tmp/hoist-gpu-bench): results.md, the
# table, also printed at the end; runs.jsonl, one JSON line per run; tests.txt;
# machine.txt; log.txt, every command's output; status.txt, one line per step.
#
# HOIST_GPU_DRY_RUN=1 checks the script where there is no GPU: the fake CUDA driver
# (tests/fakecuda, built here), a 0.33 GB checkpoint, no cold runs (they drop the page
# cache); the Python steps on device cpu, the model step on a small Qwen2-VL written
# from bench/gpu/qwen2-vl-small.json (the 0.33 GB checkpoint's scaled shapes fit no
# config). It measures nothing about a GPU.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
START=$(date +%s)
DEADLINE=${DEADLINE:-480}
DRY=${HOIST_GPU_DRY_RUN:-0}
OUT=${OUT:-/tmp/hoist-gpu-bench}
CKPT=${CKPT:-/tmp/hoist-qwen2-vl-7b}
B=${BUILD_DIR:-build/gpu}
PY=${PY:-python3}
PYEXT=${PYEXT:-auto}
# The Python package with its extension, apart from the source tree's python/hoist
PYPKG=$B/python
PYDEV=cuda:0
MODEL_DEV=cuda
PY_RUNS=5
mkdir -p "$OUT"
LOG=$OUT/log.txt
RUNS=$OUT/runs.jsonl
RES=$OUT/results.md
STATUS=$OUT/status.txt
: >"$LOG"
: >"$RUNS"
: >"$STATUS"
SCALE=1
HTOD_BYTES=8589934592
if [ "$DRY" = 1 ]; then
	CKPT=${CKPT%/}-dry
	SCALE=0.02
	HTOD_BYTES=268435456
	PYDEV=cpu
	MODEL_DEV=cpu
	PY_RUNS=3
	export HOIST_CUDA_LIBRARY=$PWD/build/fakecuda/libcuda.so.1
	export HOIST_NVML_LIBRARY=$PWD/build/fakecuda/libnvidia-ml.so.1
	export FAKECUDA_MEMORY=64G FAKECUDA_QUIET=1 FAKECUDA_LEAK_CHECK_AT_EXIT=violations
fi

left() { echo $((DEADLINE - ($(date +%s) - START))); }
say() { echo "== $(date +%T) [$(left) s left] $*" | tee -a "$LOG"; }
status() { echo "$*" | tee -a "$STATUS" >>"$LOG"; }
# budget SECONDS: the timeout a step gets, never past the deadline (10 s kept for the
# table); 0 when too little is left to start it
budget() {
	local want=$1 rest
	rest=$(($(left) - 10))
	if [ "$rest" -lt 5 ]; then
		echo 0
	elif [ "$want" -gt "$rest" ]; then
		echo "$rest"
	else
		echo "$want"
	fi
}
# timed NAME SECONDS CMD...: one timed run into runs.jsonl (bench/gpu/timed.py)
timed() {
	local name=$1 t
	t=$(budget "$2")
	shift 2
	if [ "$t" = 0 ]; then
		status "$name skipped: deadline"
		return 1
	fi
	"$PY" bench/gpu/timed.py "$RUNS" "$LOG" "$name" "$t" "$@" | tee -a "$STATUS"
}
# plain NAME SECONDS CMD...: a step whose output goes to the log
plain() {
	local name=$1 t rc
	t=$(budget "$2")
	shift 2
	if [ "$t" = 0 ]; then
		status "$name skipped: deadline"
		return 1
	fi
	say "$name: $*"
	timeout "$t" "$@" >>"$LOG" 2>&1
	rc=$?
	status "$name exit $rc"
	return "$rc"
}
# verdict NAME: the "verdict" of NAME's last JSON line (bench/gpu/python_step.py) into
# status.txt
verdict() {
	status "$1: $("$PY" -c 'import json, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
r = [r for r in runs if r["name"] == sys.argv[2]][-1]
print(r["result"]["verdict"] if r["result"] else "no result (exit %d): %s" % (r["rc"], " / ".join(r["tail"])))' "$RUNS" "$1")"
}

# ---- the machine ----------------------------------------------------------------------
{
	echo "date: $(date -u +%FT%TZ)"
	echo "dry run: $DRY"
	echo "kernel: $(uname -r)"
	echo "cpu: $(grep -m 1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
	echo "memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	if command -v nvidia-smi >/dev/null; then
		nvidia-smi -L
		# PCIe generation and width (max and now), persistence mode, driver
		nvidia-smi -q | grep -E -A2 'Driver Version|Persistence Mode|PCIe Generation|Link Width' |
			grep -E 'Driver Version|Persistence|Max|Current' | sed 's/^ *//'
	else
		echo "nvidia-smi: not found"
	fi
	mkdir -p "$(dirname "$CKPT")"
	echo "checkpoint file system: $(stat -f -c %T "$(dirname "$CKPT")") ($(df -h --output=source,size,avail "$(dirname "$CKPT")" | tail -n 1))"
	echo "read_ahead_kb: $(cat /sys/block/*/queue/read_ahead_kb 2>/dev/null | sort -u | tr '\n' ' ')"
	echo "python: $("$PY" -c 'import os, sys, sysconfig
inc = sysconfig.get_paths()["include"]
print(sys.executable, sys.version.split()[0] + ",", os.path.join(inc, "Python.h"),
      "present" if os.path.exists(os.path.join(inc, "Python.h")) else "absent")')"
} >"$OUT/machine.txt" 2>&1
tee -a "$LOG" <"$OUT/machine.txt"

# ---- build ----------------------------------------------------------------------------
built=0
from_source=0
if command -v cc >/dev/null && command -v make >/dev/null && ls .gpu/debs/*.deb >/dev/null 2>&1; then
	prefix=/tmp/hoist-gpu-prefix
	rm -rf "$prefix"
	mkdir -p "$prefix"
	for deb in .gpu/debs/*.deb; do
		dpkg -x "$deb" "$prefix"
	done
	find "$prefix" -name '*.so' -delete
	lib=$(dirname "$(find "$prefix" -name libjansson.a | head -n 1)")
	# libjansson.a is compiled for executables: its one reference to libc's stdin
	# becomes a stand-in (bench/gpu/jansson_stdin.c), so the extension can link it
	if ! { objcopy --redefine-sym stdin=hoist_jansson_stdin "$lib/libjansson.a" &&
		cc -O2 -fPIC -c -o "$prefix/jansson_stdin.o" bench/gpu/jansson_stdin.c &&
		ar rs "$lib/libjansson.a" "$prefix/jansson_stdin.o"; } >>"$LOG" 2>&1; then
		status "jansson_stdin: FAILED (log.txt; the extension cannot link here)"
	fi
	cflags="-I$prefix/usr/include -I$prefix/usr/include/x86_64-linux-gnu -DHOIST_NO_XXH_DISPATCH"
	if plain build 180 make -j"$(nproc)" BUILD="$B" CFLAGS="$cflags" LDFLAGS="-L$lib" \
		"$B/hoist" "$B/hoist_test" &&
		plain build_ceiling 60 cc -O2 -std=c11 -D_GNU_SOURCE -Isrc -o "$B/ceiling" \
			bench/gpu/ceiling.c -ldl -pthread; then
		built=1
		from_source=1
	fi
fi
if [ "$built" = 0 ] && [ -x .gpu/bin/hoist ]; then
	say "build: using the binaries prepared in .gpu/bin (no compiler here, or the build failed)"
	mkdir -p "$B"
	cp .gpu/bin/hoist .gpu/bin/hoist_test .gpu/bin/ceiling "$B"/ && built=1
	status "build from .gpu/bin"
fi
if [ "$built" = 0 ]; then
	status "build FAILED: no compiler and no .gpu/bin (run bench/gpu/prepare.sh first)"
	cat "$STATUS"
	exit 1
fi
if [ "$DRY" = 1 ]; then
	plain build_fake 120 make -s fakecuda
fi

# ---- the Python extension -----------------------------------------------------------------
# Into a package of its own ($PYPKG/hoist, the .py files copied), which the Python steps
# import: built here where this Python has its headers, else the one prepare.sh built
# (.gpu/python: CPython's stable ABI, Py_LIMITED_API 0x03090000, so Debian's 3.11 build
# loads on 3.9 and later; libhoist, jansson and xxhash linked in, so it needs no -dev
# package here).
rm -rf "$PYPKG"
mkdir -p "$PYPKG/hoist"
cp python/hoist/*.py "$PYPKG/hoist/"
ext=$PYPKG/hoist/_hoist.abi3.so
pyinc=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>>"$LOG")
pyext=
if [ "$PYEXT" = prebuilt ]; then
	why="PYEXT=prebuilt"
elif [ "$from_source" = 0 ]; then
	why="hoist was not built from source here"
elif [ ! -f "$pyinc/Python.h" ]; then
	why="no $pyinc/Python.h"
elif plain build_python 120 make BUILD="$B" CFLAGS="$cflags" LDFLAGS="-L$lib" PYTHON="$PY" \
	PY_EXT="$ext" python; then
	pyext="built here from source against $pyinc/Python.h"
else
	why="the build failed (log.txt)"
fi
if [ -z "$pyext" ] && [ -f .gpu/python/_hoist.abi3.so ]; then
	cp .gpu/python/_hoist.abi3.so "$ext" &&
		pyext="prebuilt, from .gpu/python ($(cat .gpu/python/built-with.txt 2>/dev/null)), as $why"
fi
export PYTHONPATH=$PYPKG${PYTHONPATH:+:$PYTHONPATH}
# python_step.py refuses any other extension (a source tree's python/hoist, an installed hoist)
export HOIST_GPU_EXTENSION=$ext
pyok=0
if [ -z "$pyext" ]; then
	status "python extension: none ($why, and no .gpu/python/_hoist.abi3.so): the Python steps are skipped"
elif imported=$("$PY" -c 'import hoist; print("hoist", hoist.__version__, "from", hoist._hoist.__file__)' 2>>"$LOG"); then
	status "python extension: $pyext; import ok ($imported)"
	pyok=1
else
	status "python extension: $pyext; import FAILED (log.txt): the Python steps are skipped"
fi

# ---- the CUDA tests, against this driver -------------------------------------------------
# Tests that drive the fake's knobs skip here ("not the fake"), and those of a machine
# without a driver ("GPU is present"); any other skip means a test that needs the GPU
# did not run: a failure.
t=$(budget 240)
say "tests: $B/hoist_test cuda stream_"
HOIST_BIN=$B/hoist timeout "$t" "$B/hoist_test" cuda stream_ >"$OUT/tests.txt" 2>&1
trc=$?
bad_skips=$(grep -B1 '^skip' "$OUT/tests.txt" | grep 'skip:' | grep -v 'not the fake' | grep -vc 'GPU is present')
gpu_ok=$(grep -cE '^ok +cuda_(load_reference|load_generated_and_synth|load_converts|backend_errors_and_pinned) ' "$OUT/tests.txt")
tail -n 1 "$OUT/tests.txt" | tee -a "$LOG"
if [ "$trc" = 0 ] && [ "$bad_skips" = 0 ] && [ "$gpu_ok" = 4 ]; then
	status "tests ok ($(tail -n 1 "$OUT/tests.txt"))"
else
	status "tests FAILED: exit $trc, $bad_skips skip(s) of tests that need a GPU, $gpu_ok of 4 GPU tests ok"
fi

# ---- the checkpoint --------------------------------------------------------------------
# One whose values the Python path rewrote (below; its marker file says so) no longer
# holds synth's content, which --verify checks: it is written again.
if [ -f "$CKPT/.hoist-finite" ]; then
	rm -f "$CKPT"/*.safetensors "$CKPT/model.safetensors.index.json" "$CKPT/.hoist-finite"
fi
if [ ! -f "$CKPT/model.safetensors.index.json" ]; then
	timed synth 240 "$B/hoist" synth "$CKPT" --from tests/data/qwen2-vl-7b/shard-headers.json \
		--scale "$SCALE" --seed 8
fi
mapfile -t SHARDS < <(ls "$CKPT"/*.safetensors 2>/dev/null)
if [ "${#SHARDS[@]}" = 0 ]; then
	status "no checkpoint: stopping"
	exit 1
fi
warm() { cat "${SHARDS[@]}" >/dev/null; }
cold() { sync && echo 3 >/proc/sys/vm/drop_caches; }

# ---- ceilings, warm ----------------------------------------------------------------------
warm
timed ceiling_pread_8M 60 "$B/ceiling" pread 16 8388608 "${SHARDS[@]}"
timed ceiling_pread_32M 60 "$B/ceiling" pread 16 33554432 "${SHARDS[@]}"
timed ceiling_htod 60 "$B/ceiling" htod "$HTOD_BYTES" 4
timed ceiling_readcopy 60 "$B/ceiling" readcopy 16 8388608 "${SHARDS[@]}"

# ---- hoist, warm: three default runs ---------------------------------------------------
for i in 1 2 3; do
	warm
	timed "hoist_warm_$i" 60 "$B/hoist" load "$CKPT" --device cuda:0 --json
done

# ---- every byte read back and compared -------------------------------------------------
warm
timed hoist_verify 300 "$B/hoist" load "$CKPT" --device cuda:0 --verify --json

# ---- the peers, warm, each in its own process ------------------------------------------
if [ -f .gpu/peers.py ]; then
	for loader in st_load_file hf_cuda; do
		warm
		timed "peer_$loader" 150 "$PY" .gpu/peers.py "$CKPT" "$loader"
	done
else
	status "peers skipped: no .gpu/peers.py (run bench/gpu/prepare.sh)"
fi

# ---- the Python path, warm, each step in its own process -------------------------------
# First every value of the checkpoint is given a fixed exponent, in place (python_step.py
# finite says why), after the --verify above, which checks synth's own content. Then
# hoist.load to cuda:0 from Python, and a model filled by hoist.transformers against the
# same model filled by transformers, in one process, both kept on the GPU to the end
# (python_step.py says why). The dry run's model is a small Qwen2-VL of its own.
if [ "$pyok" = 1 ]; then
	timed finite 120 "$PY" bench/gpu/python_step.py finite "$CKPT" && verdict finite
	MODEL_CKPT=$CKPT
	if [ "$DRY" = 1 ]; then
		MODEL_CKPT=$CKPT-small
		if [ ! -f "$MODEL_CKPT/model.safetensors.index.json" ]; then
			timed synth_small 60 "$B/hoist" synth "$MODEL_CKPT" \
				--from bench/gpu/qwen2-vl-small.json --seed 8
		fi
		timed finite_small 60 "$PY" bench/gpu/python_step.py finite "$MODEL_CKPT" &&
			verdict finite_small
	fi
	warm
	timed py_load 120 "$PY" bench/gpu/python_step.py load "$CKPT" "$PYDEV" "$PY_RUNS" &&
		verdict py_load
	warm
	timed py_model 180 "$PY" bench/gpu/python_step.py model "$MODEL_CKPT" "$MODEL_DEV" &&
		verdict py_model
else
	status "python steps skipped: no extension that imports"
fi

# ---- cold: page cache dropped (root) -----------------------------------------------------
if [ "$DRY" != 1 ] && cold 2>/dev/null; then
	timed hoist_cold 120 "$B/hoist" load "$CKPT" --device cuda:0 --direct --json
	cold
	timed ceiling_cold_pread 120 "$B/ceiling" pread 16 8388608 "${SHARDS[@]}"
else
	status "cold runs skipped (dry run, or the page cache cannot be dropped)"
fi

# the sweep comes last: it is what the deadline cuts first
# ---- the sweep: chunk x readers x source (a ring of two chunks per reader) -------------
for chunk in 8 32; do
	for threads in 8 16; do
		for source in pread auto register; do
			warm
			timed "sweep_${chunk}M_${threads}t_$source" 40 "$B/hoist" load "$CKPT" \
				--device cuda:0 --json --chunk "${chunk}MiB" --threads "$threads" \
				--staging "$((2 * threads * chunk))MiB" --source "$source"
		done
	done
done

# ---- the table ------------------------------------------------------------------------
"$PY" - "$RUNS" "$OUT/machine.txt" "$STATUS" >"$RES" <<'PYEOF'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs[r["name"]] = r
def res(name):
    r = runs.get(name)
    return r["result"] if r and r["rc"] == 0 and r["result"] else None
def gbps(name):
    j = res(name)
    return j and j.get("GBps")
print("# hoist on the GPU machine\n")
print("```")
print(open(sys.argv[2]).read().rstrip())
print("```\n")
rows = []
pread = gbps("ceiling_pread_8M") or 0
htod = gbps("ceiling_htod") or 0
both = gbps("ceiling_readcopy") or 0
floor = min(pread, htod) if pread and htod else 0
print("| what | seconds | GB/s | of min(read, copy) | of read+copy | peak RSS GB | note |")
print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
def row(what, secs, rate, rss=None, note=""):
    f = "%.2f" % (rate / floor) if floor and rate else "-"
    b = "%.2f" % (rate / both) if both and rate else "-"
    print("| %s | %s | %s | %s | %s | %s | %s |" % (what, "%.3f" % secs if secs else "-",
          "%.2f" % rate if rate else "-", f, b, "%.2f" % (rss / 1e9) if rss else "-", note))
for n in ("ceiling_pread_8M", "ceiling_pread_32M", "ceiling_htod", "ceiling_readcopy", "ceiling_cold_pread"):
    j = res(n)
    if j:
        row("ceiling: " + j["what"], j["seconds"], j["GBps"])
def stream(j):
    s = j["phases"]["stream"]
    return s, j["bytes"] / s / 1e9
warm = [n for n in ("hoist_warm_1", "hoist_warm_2", "hoist_warm_3") if res(n)]
if warm:
    med = sorted(warm, key=lambda n: res(n)["phases"]["stream"])[len(warm) // 2]
    j = res(med)
    s, rate = stream(j)
    st = j["stream"]
    row("hoist load --device cuda:0, warm: stream phase (median of %d)" % len(warm), s, rate,
        runs[med]["peak_rss_bytes"], "bound by %s; %d readers, %d x %.1f MiB staging, %s; "
        "pread %.2f GB, registered %.2f GB" % (st["bound"], st["threads"], st["staging_slots"],
        st["staging_bytes"] / max(1, st["staging_slots"]) / 2**20, st["staging"],
        st.get("pread_bytes", 0) / 1e9, st.get("registered_bytes", 0) / 1e9))
    walls = sorted(runs[n]["wall"] for n in warm)
    row("whole `hoist load` process, warm (median wall)", walls[len(walls) // 2],
        j["bytes"] / walls[len(walls) // 2] / 1e9, None,
        "open %.3f, plan %.3f, allocate %.3f, finalize %.3f s" % tuple(
            j["phases"][p] for p in ("open", "plan", "allocate", "finalize")))
v = runs.get("hoist_verify")
if v:
    ok = v["rc"] == 0 and any("all bytes match" in t for t in v["tail"])
    print("\n--verify of every byte: %s (%s)\n" % ("ok" if ok else "FAILED", " / ".join(v["tail"])))
    print("| what | seconds | GB/s | of min(read, copy) | of read+copy | peak RSS GB | note |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
for n, r in runs.items():
    if n.startswith("sweep_") and res(n):
        s, rate = stream(res(n))
        row(n, s, rate, r["peak_rss_bytes"], "bound by %s, registered %.2f GB" % (
            res(n)["stream"]["bound"], res(n)["stream"].get("registered_bytes", 0) / 1e9))
    elif n.startswith("sweep_"):
        row(n + " (FAILED exit %d)" % r["rc"], None, None, None, " / ".join(r["tail"]))
c = res("hoist_cold")
if c:
    s, rate = stream(c)
    row("hoist load --direct, cold: stream phase", s, rate, runs["hoist_cold"]["peak_rss_bytes"],
        "bound by %s" % c["stream"]["bound"])
for p in ("st_load_file", "hf_cuda"):
    j = res("peer_" + p)
    if j:
        row("peer %s (warm, its own timing)" % p, j["seconds"], j["GBps"],
            runs["peer_" + p]["peak_rss_bytes"], "process %.2f s" % j["process_seconds"])
    elif "peer_" + p in runs:
        row("peer %s: FAILED" % p, None, None, None, " / ".join(runs["peer_" + p]["tail"]))
# The Python steps print their JSON line whatever their exit status (1: bytes or
# logits differ); their peak RSS is the process's own over each load (VmHWM reset
# before it), imports included.
l = runs.get("py_load")
j = l and l["result"]
if j:
    row("hoist.load from Python to %s, warm (median of %d)" % (j["device"], j["runs"]),
        j["seconds"], j["GBps"], j["peak_rss_bytes"],
        "stream %.3f s, bound by %s; %s; %s" % (j["stream_seconds"], j["bound"],
        "all %d tensors equal to the file" % j["checked"] if j["bytes_equal"] else
        "BYTES DIFFER in %d tensors" % j["differ_count"], ", ".join(j["memory"])))
elif l:
    row("hoist.load from Python: FAILED (exit %d)" % l["rc"], None, None, None, " / ".join(l["tail"]))
m = runs.get("py_model")
j = m and m["result"]
for who, what in (("hoist", "hoist.transformers.from_pretrained"),
                  ("transformers", "transformers from_pretrained")):
    t = j and j["loads"].get(who)
    if t:
        lg = j.get("logits")
        row("%s(device_map=%r), warm, one process" % (what, j["device"]), t["seconds"],
            t["GBps"], t["peak_rss_bytes"], "transformers %s, config %s; logits %s" % (
            j["transformers"], j["config_form"], "not compared" if not lg else
            "bit-exact equal" if lg["torch_equal"] else "DIFFER"))
    elif m:
        row("%s: FAILED" % what, None, None, None, (j and "; ".join(
            "%s: %s" % e for e in j["errors"].items())) or " / ".join(m["tail"]))
print("\nSteps:\n```")
print(open(sys.argv[3]).read().rstrip())
print("```")
PYEOF
cat "$RES"
say "done; results in $RES"
