#!/usr/bin/env bash
# bench/gpu/prepare.sh - run on the development machine (Debian, with its package
# registry) before a GPU session; fills the repository's git-ignored .gpu/ folder,
# which the session carries to the GPU machine, where nothing can be installed:
#   .gpu/*.py, *.json   the shared GPU helpers (../shared/gpu: make_checkpoint.py,
#                       peers.py, the 7B config)
#   .gpu/debs/          libjansson-dev, libssl-dev and libxxhash-dev (headers and static
#                       libraries), fetched with apt-get download; run.sh unpacks them with
#                       dpkg -x into a private prefix and builds hoist from source
#   .gpu/bin/           hoist, hoist_test and ceiling built here, statically linked
#                       against those libraries: run.sh's fallback where the GPU
#                       machine has no C compiler or make
# Then copy .gpu/ with the checkout to the GPU machine and run "bash bench/gpu/run.sh" there.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
shared=${SHARED_GPU:-$root/../shared/gpu}
mkdir -p .gpu/debs .gpu/bin
cp "$shared"/*.py "$shared"/*.json .gpu/
rm -f .gpu/debs/*.deb
(cd .gpu/debs && apt-get download libjansson-dev libssl-dev libxxhash-dev)

# The static build, from the packages just fetched (as run.sh builds there).
prefix=$(mktemp -d /tmp/hoist-gpu-prefix.XXXXXX)
build=$(mktemp -d /tmp/hoist-gpu-build.XXXXXX)
trap 'rm -rf "$prefix" "$build"' EXIT
for deb in .gpu/debs/*.deb; do
	dpkg -x "$deb" "$prefix"
done
# only the static libraries: the shared ones' links would point at packages not here
find "$prefix" -name '*.so' -delete
lib=$(dirname "$(find "$prefix" -name libjansson.a | head -n 1)")
make -s -j"$(nproc)" BUILD="$build" CFLAGS="-I$prefix/usr/include -I$prefix/usr/include/x86_64-linux-gnu -DHOIST_NO_XXH_DISPATCH" \
	LDFLAGS="-L$lib" "$build/hoist" "$build/hoist_test"
cc -O2 -std=c11 -D_GNU_SOURCE -Isrc -o "$build/ceiling" bench/gpu/ceiling.c -ldl -pthread
cp "$build/hoist" "$build/hoist_test" "$build/ceiling" .gpu/bin/
du -sh .gpu
echo "prepare: .gpu ready ($(cd .gpu/debs && printf '%s ' *.deb)); copy it with the checkout to the GPU machine"
