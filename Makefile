# hoist - plain GNU Makefile.
#   make                build/libhoist.so, build/libhoist.a, build/hoist
#   make check          every test: the install test, the fake CUDA driver's self-test,
#                       the Python suite, then the C runner (unit, end-to-end and
#                       differential tests) against the fake driver; TESTS="NAME..."
#                       runs only those runner tests; CUDA_DRIVER=system uses the
#                       system's driver instead (a GPU machine); check-no-driver and
#                       check-no-gpu run them as on machines without a driver or GPU
#   make python         the Python extension in place (python/hoist/_hoist.abi3.so)
#   make python-check   the Python suite alone (python/tests)
#   make install-check  the install test alone (tests/install_test.sh)
#   make asan           the tests under AddressSanitizer + UBSan (build-asan/)
#   make tsan           the tests under ThreadSanitizer (build-tsan/)
#   make fuzz           libFuzzer, FUZZ_SECONDS per target (clang): the header parser,
#                       the index, config.json, device maps, whole checkpoint directories
#   make bench          benchmarks (bench/README.md)
#   make bench-stream   the stream's speed model on the fake CUDA driver (bench/README.md)
#   make gpu-dry-run    bench/gpu/run.sh against the fake driver (no GPU needed)
#   make fakecuda       the strict fake CUDA driver the tests load (tests/fakecuda)
#   make format         clang-format every C file
#   make format-check   name the C files clang-format would change, changing none
#   make install        hoist, include/*.h, libhoist.a, libhoist.so.X.Y.Z and its links,
#                       hoist.pc and hoist(1), under DESTDIR and PREFIX (or BINDIR,
#                       INCLUDEDIR, LIBDIR, PKGCONFIGDIR, MANDIR)
#   make uninstall      remove exactly what install puts there
CC ?= cc
BUILD ?= build
include tests/fakecuda/fakecuda.mk
OPT ?= -O2 -g
SAN ?=
# Each compile writes a .d file next to its object naming the headers it read (-MP
# adds an empty rule per header, so deleting a header does not break the build).
DEPFLAGS = -MMD -MP
CFLAGS_ALL = -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -fPIC -pthread -Iinclude -Isrc $(OPT) $(SAN) $(CFLAGS)
LDLIBS_ALL = -ljansson -lxxhash -ldl -lm -pthread $(SAN) $(LDFLAGS)
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

# The version is the header's (HOIST_VERSION_MAJOR/MINOR/PATCH in include/hoist.h);
# the shared library's soname carries the major number.
header_version = $(shell awk '$$2 == "HOIST_VERSION_$(1)" && $$3 ~ /^[0-9]+$$/ { print $$3 }' include/hoist.h)
VERSION_MAJOR := $(call header_version,MAJOR)
VERSION_MINOR := $(call header_version,MINOR)
VERSION_PATCH := $(call header_version,PATCH)
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)
ifneq ($(words $(VERSION_MAJOR) $(VERSION_MINOR) $(VERSION_PATCH)),3)
$(error include/hoist.h: no single numeric HOIST_VERSION_MAJOR/MINOR/PATCH (read "$(VERSION)"))
endif
SONAME := libhoist.so.$(VERSION_MAJOR)
REALNAME := libhoist.so.$(VERSION)
FUZZ_SECONDS ?= 60

LIB_SRC := $(wildcard src/*.c)
LIB_OBJ := $(LIB_SRC:src/%.c=$(BUILD)/obj/src/%.o)
TOOL_SRC := $(wildcard tools/*.c)
TOOL_OBJ := $(TOOL_SRC:tools/%.c=$(BUILD)/obj/tools/%.o)
TEST_SRC := $(filter-out tests/fuzz_%.c tests/cuda_abi_check.c tests/install_example.c,$(wildcard tests/*.c))
TEST_OBJ := $(TEST_SRC:tests/%.c=$(BUILD)/obj/tests/%.o)
FUZZ_SRC := $(wildcard tests/fuzz_*.c)
CUDA_H := $(firstword $(wildcard $(CUDA_HOME)/include/cuda.h /usr/local/cuda/include/cuda.h))

# Declarations of the CUDA driver ABI are our own (backend_cuda.c loads libcuda at
# run time); where cuda.h exists, a compile-time check holds them against it.
ifneq ($(CUDA_H),)
ifneq ($(wildcard tests/cuda_abi_check.c),)
CUDA_CHECK := $(BUILD)/cuda_abi_check.o
endif
endif

.PHONY: all check install-check asan tsan fuzz bench format format-check install uninstall clean
all: $(BUILD)/libhoist.so $(BUILD)/libhoist.a $(BUILD)/hoist $(CUDA_CHECK)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(DEPFLAGS) -c $< -o $@

$(BUILD)/libhoist.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# libhoist.map exports the public hoist_* functions and nothing else.
$(BUILD)/libhoist.so: $(LIB_OBJ) libhoist.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=libhoist.map \
		-o $@ $(LIB_OBJ) $(LDLIBS_ALL)

$(BUILD)/hoist: $(TOOL_OBJ) $(BUILD)/libhoist.a
	$(CC) -o $@ $(TOOL_OBJ) $(BUILD)/libhoist.a $(LDLIBS_ALL)

$(BUILD)/hoist_test: $(TEST_OBJ) $(BUILD)/libhoist.a
	$(CC) -o $@ $(TEST_OBJ) $(BUILD)/libhoist.a $(LDLIBS_ALL) -lcrypto

$(BUILD)/cuda_abi_check.o: tests/cuda_abi_check.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(DEPFLAGS) -I$(dir $(CUDA_H)) -c $< -o $@

# The install test (tests/install_test.sh, a few seconds) runs first and quietly: its
# log is shown only if it fails, and then the C runner does not start. It is left out
# when TESTS picks runner tests. The runner's summary line ends the output.
INSTALL_TEST = BUILD=$(BUILD) CC="$(CC)" EXAMPLE_CFLAGS="$(SAN)" tests/install_test.sh
# Predictions use this machine's figures where `hoist bench` kept them: the tests get
# an empty cache of their own, so they see the assumptions unless they measure.
TEST_CACHE = $(CURDIR)/$(BUILD)/test-cache

# The Python suite (python/tests, unittest) runs next, before the C runner, in the
# plain build only (a sanitizer's runtime would have to be preloaded into Python).
CHECK_PYTHON = $(if $(TESTS)$(SAN),,python-check)

# The C runner's tests load the strict fake CUDA driver and NVML (tests/fakecuda), built
# with the same sanitizer, unless CUDA_DRIVER=system: then the system's driver, if
# any (a GPU machine: `make check CUDA_DRIVER=system`).
CUDA_DRIVER ?= fake
ifeq ($(CUDA_DRIVER),fake)
TEST_DRIVER_ENV = HOIST_CUDA_LIBRARY=$(FAKECUDA_LIB) HOIST_NVML_LIBRARY=$(FAKENVML_LIB)
TEST_DRIVER_DEPS = $(FAKECUDA_LIB) $(FAKENVML_LIB)
else ifneq ($(CUDA_DRIVER),system)
$(error CUDA_DRIVER=$(CUDA_DRIVER): expected fake or system)
endif

# The runner's tests on the two other kinds of machine a user may have: no CUDA driver
# at all, and a driver without a GPU (the fake with no devices, standing for a system
# driver: its knob tests skip as on a real one).
.PHONY: check-no-driver check-no-gpu
check-no-driver: all $(BUILD)/hoist_test
	@rm -rf $(TEST_CACHE) && mkdir -p $(TEST_CACHE)
	XDG_CACHE_HOME=$(TEST_CACHE) HOIST_CUDA_LIBRARY=/nonexistent/libcuda.so.1 \
		HOIST_BIN=$(BUILD)/hoist ./$(BUILD)/hoist_test $(TESTS)
check-no-gpu: all $(BUILD)/hoist_test $(FAKECUDA_LIB) $(FAKENVML_LIB)
	@rm -rf $(TEST_CACHE) && mkdir -p $(TEST_CACHE)
	XDG_CACHE_HOME=$(TEST_CACHE) HOIST_CUDA_LIBRARY=$(FAKECUDA_LIB) \
		HOIST_NVML_LIBRARY=$(FAKENVML_LIB) FAKECUDA_DEVICES=0 HOIST_TEST_FAKE_AS_SYSTEM=1 \
		HOIST_BIN=$(BUILD)/hoist ./$(BUILD)/hoist_test $(TESTS)

check: all $(BUILD)/hoist_test $(TEST_DRIVER_DEPS) $(FAKECUDA_SELFTEST) $(if $(CHECK_PYTHON),$(PY_EXT))
ifeq ($(TESTS),)
	@if $(INSTALL_TEST) > $(BUILD)/install_test.log 2>&1; then \
		tail -n 1 $(BUILD)/install_test.log; \
	else \
		cat $(BUILD)/install_test.log; \
		echo "install_test: FAILED (make install-check to rerun it; log in $(BUILD)/install_test.log)"; \
		exit 1; \
	fi
	@if $(FAKECUDA_SELFTEST) $(FAKECUDA_LIB) $(FAKENVML_LIB) > $(BUILD)/fakecuda_selftest.log 2>&1; then \
		tail -n 1 $(BUILD)/fakecuda_selftest.log; \
	else \
		cat $(BUILD)/fakecuda_selftest.log; \
		echo "fakecuda-selftest: FAILED (log in $(BUILD)/fakecuda_selftest.log)"; \
		exit 1; \
	fi
endif
	@rm -rf $(TEST_CACHE) && mkdir -p $(TEST_CACHE)
ifneq ($(CHECK_PYTHON),)
	@XDG_CACHE_HOME=$(TEST_CACHE) $(MAKE) --no-print-directory python-check
endif
	XDG_CACHE_HOME=$(TEST_CACHE) $(TEST_DRIVER_ENV) HOIST_BIN=$(BUILD)/hoist ./$(BUILD)/hoist_test $(TESTS)

install-check: all
	$(INSTALL_TEST)

asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" check

tsan:
	$(MAKE) BUILD=build-tsan OPT="-O1 -g" SAN="-fsanitize=thread" check

# One fuzzer per tests/fuzz_NAME.c (FUZZ_TARGETS="index open" picks some), corpus in
# tests/fuzz/NAME/, dictionary tests/fuzz/NAME.dict where there is one; new finds go to
# build-fuzz/NAME/ so the repo's corpus only grows by hand. The drivers (tests/fuzzdrv.c)
# are shared with the tests that replay the corpora and tests/fuzz/regressions/.
FUZZ_TARGETS ?= $(FUZZ_SRC:tests/fuzz_%.c=%)
fuzz:
	@mkdir -p build-fuzz
	@set -e; for n in $(FUZZ_TARGETS); do \
		clang -std=c11 -g -O1 -D_GNU_SOURCE -pthread -Iinclude -Isrc -Itests \
			-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
			-o build-fuzz/fuzz_$$n tests/fuzz_$$n.c tests/fuzzdrv.c $(LIB_SRC) \
			-ljansson -lxxhash -ldl -lm; \
		mkdir -p build-fuzz/$$n tests/fuzz/$$n; \
		dict=; [ -f tests/fuzz/$$n.dict ] && dict=-dict=tests/fuzz/$$n.dict; \
		echo "fuzz: $$n for $(FUZZ_SECONDS) s"; \
		./build-fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
			-rss_limit_mb=2048 -print_final_stats=1 $$dict build-fuzz/$$n tests/fuzz/$$n; \
	done

bench: all
	./bench/run.sh

# The C files clang-format keeps (.clang-format), for format and format-check alike.
FORMAT_SRC = $(wildcard include/*.h src/*.c src/*.h tools/*.c tools/*.h tests/*.c tests/*.h \
	tests/fakecuda/*.c tests/fakecuda/*.h python/*.c)

format:
	clang-format -i $(FORMAT_SRC)

format-check:
	@command -v clang-format >/dev/null || { echo "format-check: no clang-format"; exit 1; }
	@bad=0; for f in $(FORMAT_SRC); do \
		if ! out=$$(clang-format --dry-run -Werror --ferror-limit=0 $$f 2>&1); then \
			echo "format-check: $$f: $$(printf '%s\n' "$$out" | grep -c ': error: ') places to change"; \
			bad=$$((bad + 1)); \
		fi; \
	done; \
	if [ $$bad -ne 0 ]; then \
		echo "format-check: $$bad of $(words $(FORMAT_SRC)) files differ from .clang-format (clang-format --dry-run FILE shows where)"; \
		exit 1; \
	fi; \
	echo "format-check: $(words $(FORMAT_SRC)) files match .clang-format"

# What install puts where; uninstall removes exactly these.
HEADERS := $(wildcard include/*.h)
INSTALLED = $(DESTDIR)$(BINDIR)/hoist \
	$(addprefix $(DESTDIR)$(INCLUDEDIR)/,$(notdir $(HEADERS))) \
	$(addprefix $(DESTDIR)$(LIBDIR)/,libhoist.a $(REALNAME) $(SONAME) libhoist.so) \
	$(DESTDIR)$(PKGCONFIGDIR)/hoist.pc $(DESTDIR)$(MANDIR)/man1/hoist.1

# Where jansson and libxxhash have .pc files, static users get them (and their -L)
# through Requires.private; where one has none, its -l goes in Libs.private.
JANSSON_PC = $(shell pkg-config --exists jansson 2>/dev/null && echo jansson)
XXHASH_PC = $(shell pkg-config --exists libxxhash 2>/dev/null && echo libxxhash)

# hoist.pc is written by install, straight into place: its directories are install's,
# not the build's (and a root-owned copy in BUILD would stop a later install by its
# owner). Those under PREFIX are written relative to ${prefix}, for --define-prefix.
pc_dir = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(BUILD)/hoist $(DESTDIR)$(BINDIR)/hoist
	install -m 644 $(HEADERS) $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(BUILD)/libhoist.a $(DESTDIR)$(LIBDIR)/libhoist.a
	install -m 755 $(BUILD)/libhoist.so $(DESTDIR)$(LIBDIR)/$(REALNAME)
	ln -sf $(REALNAME) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libhoist.so
	sed -e 's|@prefix@|$(PREFIX)|' -e 's|@libdir@|$(call pc_dir,$(LIBDIR))|' \
		-e 's|@includedir@|$(call pc_dir,$(INCLUDEDIR))|' -e 's|@version@|$(VERSION)|' \
		-e 's|@requires_private@|$(strip $(JANSSON_PC) $(XXHASH_PC))|' \
		-e 's|@libs_private@|$(if $(JANSSON_PC),,-ljansson )$(if $(XXHASH_PC),,-lxxhash )-ldl -lm -pthread|' \
		hoist.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/hoist.pc
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/hoist.pc
	install -m 644 doc/hoist.1 $(DESTDIR)$(MANDIR)/man1/hoist.1

uninstall:
	rm -f $(INSTALLED)

clean:
	rm -rf build build-asan build-tsan build-fuzz $(PY_EXT) python/build

# Planning speed: the 7B layout and a synthetic 100,000-tensor checkpoint (bench/bench_plan.c).
$(BUILD)/bench_plan: bench/bench_plan.c $(BUILD)/libhoist.a
	$(CC) $(CFLAGS_ALL) $(DEPFLAGS) -o $@ $< $(BUILD)/libhoist.a $(LDLIBS_ALL)

.PHONY: bench-plan
bench-plan: $(BUILD)/bench_plan
	./$(BUILD)/bench_plan

# CPU load benchmark helpers (bench/run.sh): the pread and memcpy ceilings.
$(BUILD)/ceiling: bench/ceiling.c
	@mkdir -p $(BUILD)
	$(CC) -std=c11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -pthread $(DEPFLAGS) -o $@ $<

.PHONY: bench-tools
bench-tools: $(BUILD)/ceiling

# Verify's speed against a load plus one read of the files (bench/verify.sh).
.PHONY: bench-verify
bench-verify: all bench-tools
	./bench/verify.sh

# A speed model of the stream into one GPU, on the fake driver (bench/bench_stream.c).
$(BUILD)/bench_stream: bench/bench_stream.c $(BUILD)/libhoist.a
	$(CC) $(CFLAGS_ALL) $(DEPFLAGS) -o $@ $< $(BUILD)/libhoist.a $(LDLIBS_ALL)

BENCH_STREAM_RUNS ?= 3
.PHONY: bench-stream gpu-dry-run
bench-stream: $(BUILD)/bench_stream $(FAKECUDA_LIB)
	HOIST_CUDA_LIBRARY=$(FAKECUDA_LIB) ./$(BUILD)/bench_stream $(BENCH_STREAM_RUNS)

# bench/gpu/run.sh against the fake driver and a small checkpoint: a check of the
# script where there is no GPU (bench/README.md), its Python steps on the Python the
# tests use (torch, transformers), on device cpu.
gpu-dry-run: fakecuda
	HOIST_GPU_DRY_RUN=1 OUT=$(BUILD)/gpu-dry-run PY=$(PYTHON) bash bench/gpu/run.sh

# Open speed: a 100,000-tensor checkpoint, 4 shards and an index (bench/bench_open.c).
$(BUILD)/bench_open: bench/bench_open.c $(BUILD)/libhoist.a
	$(CC) $(CFLAGS_ALL) $(DEPFLAGS) -o $@ $< $(BUILD)/libhoist.a $(LDLIBS_ALL)

.PHONY: bench-open bench-open-build
bench-open-build: $(BUILD)/bench_open
bench-open: $(BUILD)/bench_open
	./$(BUILD)/bench_open

DEPS := $(LIB_OBJ:.o=.d) $(TOOL_OBJ:.o=.d) $(TEST_OBJ:.o=.d) \
	$(addprefix $(BUILD)/,cuda_abi_check.d bench_plan.d bench_open.d bench_stream.d ceiling.d)
-include $(DEPS)

# The Python extension, in place for the tests (python/hoist/_hoist.abi3.so): the
# library's objects linked in, only its init function exported. pip builds the same
# from python/setup.py (or setup.py at the root).
PYTHON ?= $(if $(wildcard .venv/bin/python3),.venv/bin/python3,python3)
PY_INCLUDE = $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
PY_EXT := python/hoist/_hoist.abi3.so

$(PY_EXT): python/_hoist.c $(BUILD)/libhoist.a python/hoist.map
	$(CC) $(CFLAGS_ALL) -I$(PY_INCLUDE) $(DEPFLAGS) -MF $(BUILD)/_hoist.d -shared \
		-Wl,--version-script=python/hoist.map -o $@ python/_hoist.c $(BUILD)/libhoist.a \
		$(LDLIBS_ALL)

.PHONY: python python-check
python: $(PY_EXT)

# The Python suite (unittest), quietly: its log is shown when it fails.
python-check: $(PY_EXT)
	@if HOIST_BIN=$(BUILD)/hoist $(PYTHON) -m unittest discover -s python/tests -t python \
		> $(BUILD)/python_test.log 2>&1; then \
		echo "python: $$(grep -E '^Ran [0-9]+ tests' $(BUILD)/python_test.log), $$(tail -n 1 $(BUILD)/python_test.log)"; \
	else \
		cat $(BUILD)/python_test.log; \
		echo "python: FAILED (make python-check to rerun; log in $(BUILD)/python_test.log)"; \
		exit 1; \
	fi
