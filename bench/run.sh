#!/bin/sh
# bench/run.sh - the CPU load benchmark (bench/README.md). Run by hand: `make bench`.
#
# Writes a synthetic checkpoint shaped like Qwen2-VL-7B (F16, first dimensions scaled
# to about 3 GB) under $BENCH_DIR (default: a fresh directory under /tmp, removed
# afterwards unless BENCH_KEEP=1), then times hoist and the reference reader on it,
# warm and cold, with the machine's ceilings measured in the same run.
#
# Environment: BENCH_DIR, BENCH_KEEP, BENCH_SCALE (default 0.18), BENCH_WARM (7),
# BENCH_COLD (5), BENCH_IDLE (3), BENCH_PAUSE (3 s), BENCH_THREADS (hoist --threads;
# default hoist's own), PYTHON.
set -eu
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python3}
SCALE=${BENCH_SCALE:-0.18}
make -s all bench-tools

if [ -n "${BENCH_DIR:-}" ]; then
	mkdir -p "$BENCH_DIR"
	work=$BENCH_DIR
else
	work=$(mktemp -d /tmp/hoist-bench.XXXXXX)
fi
cleanup() {
	if [ "${BENCH_KEEP:-0}" != 1 ] && [ -z "${BENCH_DIR:-}" ]; then
		rm -rf "$work"
	fi
}
trap cleanup EXIT INT TERM

# numpy has no bfloat16, so the reference reader needs F16: the 7B config with its
# dtype changed; hoist moves the bytes whatever their dtype.
"$PYTHON" - "$work/config-f16.json" <<'PY'
import json, sys
c = json.load(open("tests/data/qwen2-vl-7b/config.json"))
c["torch_dtype"] = "float16"
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
ckpt=$work/ckpt
./build/hoist synth "$ckpt" --from "$work/config-f16.json" --scale "$SCALE" \
	--shard-size 800MB --seed 1

"$PYTHON" bench/load_bench.py --dir "$ckpt" --hoist build/hoist --ceiling build/ceiling \
	--python "$PYTHON" --warm "${BENCH_WARM:-7}" --cold "${BENCH_COLD:-5}" \
	--idle "${BENCH_IDLE:-3}" --pause "${BENCH_PAUSE:-3}" --threads "${BENCH_THREADS:-0}"
