#!/bin/sh
# bench/verify.sh - the speed of `hoist verify` against a load plus one read of the
# files, measured in the same run (bench/verify_bench.py). Run by hand:
# `make bench-verify`. A synthetic checkpoint of the Qwen2-VL-7B layout scaled to about
# 1 GB (BENCH_SCALE, default 0.06) is written under a fresh directory in /tmp (or
# BENCH_DIR) and removed afterwards. Environment: BENCH_DIR, BENCH_SCALE,
# BENCH_ROUNDS (5), BENCH_DEVICES (cpu,sim:0).
set -eu
cd "$(dirname "$0")/.."
make -s all bench-tools
if [ -n "${BENCH_DIR:-}" ]; then
	mkdir -p "$BENCH_DIR"
	work=$BENCH_DIR
else
	work=$(mktemp -d /tmp/hoist-verify-bench.XXXXXX)
	trap 'rm -rf "$work"' EXIT INT TERM
fi
ckpt=$work/ckpt
[ -f "$ckpt/model.safetensors.index.json" ] ||
	./build/hoist synth "$ckpt" --from tests/data/qwen2-vl-7b/config.json \
		--scale "${BENCH_SCALE:-0.06}" --shard-size 400MB --seed 1
python3 bench/verify_bench.py --dir "$ckpt" --rounds "${BENCH_ROUNDS:-5}" \
	--devices "${BENCH_DEVICES:-cpu,sim:0}"
