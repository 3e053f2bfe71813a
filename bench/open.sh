#!/bin/sh
# open.sh - time hoist_checkpoint_open on a 100,000-tensor checkpoint (bench/bench_open.c).
#   bench/open.sh [RUNS] [TENSORS]     from the repository root
set -e
cd "$(dirname "$0")/.."
make -s bench-open-build
exec ./build/bench_open "$@"
