#!/usr/bin/env bash
# install_test.sh - installs hoist into a temporary DESTDIR and checks what a user of
# the installed package gets: the file layout, the library's exports and soname, the
# pkg-config file (by building README.md's library example, tests/install_example.c,
# against the installed header and library, shared and static, and running it on a
# reference checkpoint), the man page, and an uninstall that leaves nothing behind.
#
# Run by `make check` (and alone by `make install-check`) from the repository root
# after the build; it reuses BUILD's objects. One line per check; exit status 1 if any
# failed. Environment: BUILD (default build), CC, EXAMPLE_CFLAGS (flags for the
# example, e.g. the sanitizer the library was built with), MAKE.
set -u
cd "$(dirname "$0")/.." || exit 1

BUILD=${BUILD:-build}
CC=${CC:-cc}
EXAMPLE_CFLAGS=${EXAMPLE_CFLAGS:-}
MAKE=${MAKE:-make}
prefix=/usr/local
ckpt=tests/data/reference/tiny-qwen2-vl
# The checkpoint's index, as transformers wrote it: 70 tensors, total_size 529664.
want_loaded="loaded: 70 tensors, 529664 bytes, 70 on cpu"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hoist-install-test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
lib=$root$prefix/lib
log=$tmp/log
passed=0
failed=0

pass()
{
	echo "install_test: ok    $1"
	passed=$((passed + 1))
}

fail()
{
	echo "install_test: FAIL  $1"
	[ -s "$log" ] && sed 's/^/    /' "$log"
	failed=$((failed + 1))
}

# check WHAT COMMAND...: passes if COMMAND succeeds; its output is shown if it fails.
check()
{
	local what=$1
	shift
	if "$@" >"$log" 2>&1; then
		pass "$what"
	else
		fail "$what"
	fi
}

# The make running this test has its own jobserver and flags; the install is a
# separate build user, as a packager's `make install DESTDIR=...` would be.
submake()
{
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL "$MAKE" --no-print-directory BUILD="$BUILD" \
		PREFIX=$prefix DESTDIR="$root" "$@"
}

check "make install DESTDIR=\$tmp PREFIX=$prefix" submake install
if [ ! -x "$root$prefix/bin/hoist" ]; then
	echo "install_test: nothing installed; stopping"
	exit 1
fi

# The version, from the header's own string: the Makefile reads the numbers.
version=$(sed -n 's/^#define HOIST_VERSION_STRING "\(.*\)"$/\1/p' include/hoist.h)
major=${version%%.*}

layout()
{
	local want=$tmp/layout.want
	{
		echo "bin/hoist"
		for h in include/*.h; do echo "include/${h#include/}"; done
		echo "lib/libhoist.a"
		echo "lib/libhoist.so -> libhoist.so.$major"
		echo "lib/libhoist.so.$major -> libhoist.so.$version"
		echo "lib/libhoist.so.$version"
		echo "lib/pkgconfig/hoist.pc"
		echo "share/man/man1/hoist.1"
	} | LC_ALL=C sort >"$want"
	(cd "$root$prefix" && find . ! -type d \( -type l -printf '%P -> %l\n' -o -printf '%P\n' \)) |
		LC_ALL=C sort | diff -u "$want" -
}
check "installed files: exactly bin, include/*.h, lib (.a, .so.$version + 2 links), pkgconfig, man1" layout

check "installed libhoist.so.$version has soname libhoist.so.$major" \
	bash -c "readelf -d '$lib/libhoist.so.$version' | grep -q 'SONAME.*\[libhoist.so.$major\]'"

# The version node the map file exports under (its first node).
node=$(sed -n 's/^\(HOIST_[0-9.]*\) {.*/\1/p' libhoist.map | head -n 1)
node_re=${node//./\\.}

exports()
{
	nm -D --defined-only "$lib/libhoist.so.$version" | awk '{ print $3 }' >"$tmp/exports"
	local n_all n_pub
	n_all=$(grep -c . "$tmp/exports")
	n_pub=$(grep -c "^hoist_[a-z0-9_]*@@$node_re\$" "$tmp/exports")
	echo "$n_all defined dynamic symbols, $n_pub of them hoist_*@@$node"
	if grep '^hoist__' "$tmp/exports"; then
		echo "internal hoist__ symbols exported (above)"
		return 1
	fi
	if grep -v -e "^hoist_[a-z0-9_]*@@$node_re\$" -e "^$node_re\$" "$tmp/exports"; then
		echo "symbols exported besides hoist_*@@$node (above)"
		return 1
	fi
	grep -qx "hoist_checkpoint_open@@$node" "$tmp/exports" || {
		echo "hoist_checkpoint_open is not exported"
		return 1
	}
	# Each export is declared in an installed header.
	local s bad=0
	while read -r s; do
		grep -qw "$s" "$root$prefix"/include/*.h || {
			echo "$s is exported but no installed header declares it"
			bad=1
		}
	done < <(sed -n "s/@@$node_re\$//p" "$tmp/exports")
	return $bad
}
check "nm -D: hoist_checkpoint_open and the other public functions at $node, no hoist__ symbol" exports

export PKG_CONFIG_PATH=$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root
check "pkg-config --modversion hoist is $version" \
	bash -c "[ \"\$(pkg-config --modversion hoist)\" = '$version' ]"
check "installed hoist version prints hoist $version" \
	bash -c "[ \"\$('$root$prefix/bin/hoist' version)\" = 'hoist $version' ]"
check "installed hoist inspect --json counts 70 tensors in $ckpt" \
	bash -c "'$root$prefix/bin/hoist' inspect --json $ckpt | grep -q '\"tensor_count\": *70[,}]'"

# The example, as a user would build it: a copy outside the tree, no -I but pkg-config's.
cp tests/install_example.c "$tmp/example.c"

# run_example WHAT BINARY [ENV...]: runs it on the checkpoint and checks what it printed.
run_example()
{
	local bin=$1
	shift
	env "$@" "$bin" "$ckpt" >"$tmp/out" 2>&1 || {
		cat "$tmp/out"
		return 1
	}
	cat "$tmp/out"
	grep -qx "library: hoist $version" "$tmp/out" && grep -qx "$want_loaded" "$tmp/out"
}

# shellcheck disable=SC2046,SC2086 # CC, EXAMPLE_CFLAGS and pkg-config's output are word lists
check "cc example.c \$(pkg-config --cflags --libs hoist)" \
	$CC $EXAMPLE_CFLAGS -o "$tmp/example_shared" "$tmp/example.c" \
	$(pkg-config --cflags --libs hoist)
check "shared example links libhoist.so.$major" \
	bash -c "readelf -d '$tmp/example_shared' | grep -q 'NEEDED.*\[libhoist.so.$major\]'"
check "shared example resolves libhoist.so.$major in the install" \
	bash -c "LD_LIBRARY_PATH='$lib' ldd '$tmp/example_shared' | grep -q 'libhoist.so.$major => $lib/libhoist.so.$major'"
check "shared example loads $ckpt to cpu: \"$want_loaded\"" \
	run_example "$tmp/example_shared" LD_LIBRARY_PATH="$lib"

# With both libhoist.so and libhoist.a installed, the linker takes the .so for -lhoist;
# -Bstatic around it makes the link use the archive, so that what the archive needs
# comes from pkg-config --static alone.
static_libs=$(pkg-config --static --libs hoist)
static_libs=${static_libs/-lhoist/-Wl,-Bstatic -lhoist -Wl,-Bdynamic}
# shellcheck disable=SC2046,SC2086 # as above
check "cc example.c \$(pkg-config --static --cflags --libs hoist), libhoist.a" \
	$CC $EXAMPLE_CFLAGS -o "$tmp/example_static" "$tmp/example.c" \
	$(pkg-config --static --cflags hoist) $static_libs
check "static example does not need libhoist.so" \
	bash -c "[ -x '$tmp/example_static' ] && ! readelf -d '$tmp/example_static' | grep -q 'NEEDED.*libhoist'"
check "static example loads $ckpt to cpu: \"$want_loaded\"" \
	run_example "$tmp/example_static"

man_page=$root$prefix/share/man/man1/hoist.1
render()
{
	local text=$tmp/hoist.1.txt
	if command -v man >/dev/null; then
		MANWIDTH=80 man --warnings -l "$man_page" >"$text" 2>"$tmp/warnings" || return 1
	else
		groff -man -Tutf8 -ww "$man_page" >"$text" 2>"$tmp/warnings" || return 1
	fi
	if [ -s "$tmp/warnings" ]; then
		cat "$tmp/warnings"
		return 1
	fi
	local s
	for s in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS "EXIT STATUS" FILES EXAMPLES; do
		grep -q "^$s" "$text" || {
			echo "no $s section"
			return 1
		}
	done
	grep -q 'hoist - load safetensors checkpoints' "$text"
}
if command -v man >/dev/null || command -v groff >/dev/null; then
	check "man page hoist(1) renders without warnings, with its sections" render
else
	echo "install_test: skip  man page render: neither man nor groff is installed (scripts/setup.sh installs groff-base)"
fi

# Every command and option the installed hoist's --help texts name is in the man page.
man_names()
{
	local bin=$root$prefix/bin/hoist src=$tmp/hoist.1.src missing=0 w
	sed -e 's/\\-/-/g' "$man_page" >"$src"
	for w in $("$bin" --help | awk '/^  [a-z]/ { print $1 }') \
		$({ "$bin" --help; for c in inspect plan load synth; do "$bin" $c --help; done; } |
			grep -o -e '--[a-z][a-z-]*' | sort -u); do
		grep -qE -- "$w([^a-z-]|$)" "$src" || {
			echo "hoist(1) does not mention $w"
			missing=1
		}
	done
	return $missing
}
check "man page names every command and option of hoist --help" man_names

check "make uninstall DESTDIR=\$tmp PREFIX=$prefix" submake uninstall
left()
{
	(cd "$root" && find . ! -type d)
	[ -z "$(cd "$root" && find . ! -type d)" ]
}
check "nothing of hoist left under \$tmp after uninstall" left

echo "install_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
