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
#   .gpu/python/        the Python extension _hoist.abi3.so built here against Debian's
#                       Python 3.11 headers on CPython's stable ABI (Py_LIMITED_API
#                       0x03090000, python/_hoist.c: it loads on 3.9 and later), libhoist,
#                       jansson and xxhash linked in; built-with.txt says how. run.sh's
#                       fallback where the GPU machine's Python has no headers
# Then copy .gpu/ with the checkout to the GPU machine and run "bash bench/gpu/run.sh" there.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
shared=${SHARED_GPU:-$root/../shared/gpu}
py=/usr/bin/python3
mkdir -p .gpu/debs .gpu/bin .gpu/python
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
# libjansson.a is compiled for executables: its one reference to libc's stdin becomes
# a stand-in (bench/gpu/jansson_stdin.c) so that a shared object can link it too
objcopy --redefine-sym stdin=hoist_jansson_stdin "$lib/libjansson.a"
cc -O2 -fPIC -c -o "$prefix/jansson_stdin.o" bench/gpu/jansson_stdin.c
ar rs "$lib/libjansson.a" "$prefix/jansson_stdin.o"
cflags="-I$prefix/usr/include -I$prefix/usr/include/x86_64-linux-gnu -DHOIST_NO_XXH_DISPATCH"
make -s -j"$(nproc)" BUILD="$build" CFLAGS="$cflags" LDFLAGS="-L$lib" "$build/hoist" "$build/hoist_test"
cc -O2 -std=c11 -D_GNU_SOURCE -Isrc -o "$build/ceiling" bench/gpu/ceiling.c -ldl -pthread
cp "$build/hoist" "$build/hoist_test" "$build/ceiling" .gpu/bin/

# The extension, as `make python` builds it, into a package of its own for the check.
mkdir -p "$build/python/hoist"
make -s BUILD="$build" CFLAGS="$cflags" LDFLAGS="-L$lib" PYTHON="$py" \
	PY_EXT="$build/python/hoist/_hoist.abi3.so" python
if readelf -d "$build/python/hoist/_hoist.abi3.so" | grep -E 'NEEDED.*(jansson|xxhash)'; then
	echo "prepare: the extension links jansson or xxhash dynamically" >&2
	exit 1
fi
cp python/hoist/*.py "$build/python/hoist/"
PYTHONPATH=$build/python "$py" -c 'import hoist; print("prepare: import hoist", hoist.__version__)'
cp "$build/python/hoist/_hoist.abi3.so" .gpu/python/
glibc=$(objdump -T .gpu/python/_hoist.abi3.so | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)
echo "built $(date -u +%F) against $("$py" -c 'import sys; print("Python", sys.version.split()[0])') headers," \
	"Py_LIMITED_API $(awk '$1 == "#define" && $2 == "Py_LIMITED_API" { print $3 }' python/_hoist.c), needs $glibc" \
	>.gpu/python/built-with.txt
du -sh .gpu
echo "prepare: .gpu ready ($(cd .gpu/debs && printf '%s ' *.deb); python: $(cat .gpu/python/built-with.txt)); copy it with the checkout to the GPU machine"
