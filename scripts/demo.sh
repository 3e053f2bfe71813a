#!/usr/bin/env bash
# hoist's main job on a built-in default, on a fresh machine:
# installs what is needed, builds, writes a small synthetic checkpoint, shows what is in
# it, measures this machine's links (kept for later predictions), shows where it would
# go and how long that should take, then loads it with the phase report and verifies
# every byte.
#   usage: scripts/demo.sh [DEVICE]     (default: cuda:0 when a GPU driver loads, else cpu)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make -s -j"$(nproc)"
dir=${HOIST_DEMO_DIR:-/tmp/hoist-demo}
if [ ! -f "$dir/model.safetensors.index.json" ]; then
	echo "== hoist synth $dir"
	./build/hoist synth "$dir"
fi
device=${1:-}
if [ -z "$device" ]; then
	if ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1' && command -v nvidia-smi >/dev/null &&
		nvidia-smi -L >/dev/null 2>&1; then
		device=cuda:0
	else
		device=cpu
	fi
fi
echo "== hoist inspect $dir"
./build/hoist inspect "$dir"
echo
echo "== hoist bench $dir --device $device"
./build/hoist bench "$dir" --device "$device"
echo
echo "== hoist plan $dir --device $device"
./build/hoist plan "$dir" --device "$device"
echo
echo "== hoist load $dir --device $device --verify --verbose"
./build/hoist load "$dir" --device "$device" --verify --verbose
