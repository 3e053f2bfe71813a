# hoist - plain GNU Makefile.
#   make                build/libhoist.so, build/libhoist.a, build/hoist
#   make check          every test: the install test, then the C runner (unit, end-to-end
#                       and differential tests); TESTS="NAME..." runs only those runner tests
#   make install-check  the install test alone (tests/install_test.sh)
#   make asan           the tests under AddressSanitizer + UBSan (build-asan/)
#   make tsan           the tests under ThreadSanitizer (build-tsan/)
#   make fuzz           libFuzzer, FUZZ_SECONDS per target (clang): the header parser,
#                       the index, config.json, device maps, whole checkpoint directories
#   make bench          benchmarks (bench/README.md)
#   make format         clang-format every C file
#   make format-check   name the C files clang-format would change, changing none
#   make install        hoist, include/*.h, libhoist.a, libhoist.so.X.Y.Z and its links,
#                       hoist.pc and hoist(1), under DESTDIR and PREFIX (or BINDIR,
#                       INCLUDEDIR, LIBDIR, PKGCONFIGDIR, MANDIR)
#   make uninstall      remove exactly what install puts there
CC ?= cc
BUILD ?= build
OPT ?= -O2 -g
SAN ?=
# Each compile writes a .d file next to its object naming the headers it read (-MP
# adds an empty rule per header, so deleting a header does not break the build).
DEPFLAGS = -MMD -MP
CFLAGS_ALL = -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -fPIC -pthread -Iinclude -Isrc $(OPT) $(SAN) $(CFLAGS)
LDLIBS_ALL = -ljansson -ldl -lm -pthread $(SAN) $(LDFLAGS)
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

check: all $(BUILD)/hoist_test
ifeq ($(TESTS),)
	@if $(INSTALL_TEST) > $(BUILD)/install_test.log 2>&1; then \
		tail -n 1 $(BUILD)/install_test.log; \
	else \
		cat $(BUILD)/install_test.log; \
		echo "install_test: FAILED (make install-check to rerun it; log in $(BUILD)/install_test.log)"; \
		exit 1; \
	fi
endif
	HOIST_BIN=$(BUILD)/hoist ./$(BUILD)/hoist_test $(TESTS)

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
			-ljansson -ldl -lm; \
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

# Where jansson has a .pc file, static users get it (and its -L) through
# Requires.private; where it has none, -ljansson goes in Libs.private.
JANSSON_PC = $(shell pkg-config --exists jansson 2>/dev/null && echo jansson)

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
		-e 's|@requires_private@|$(JANSSON_PC)|' \
		-e 's|@libs_private@|$(if $(JANSSON_PC),,-ljansson )-ldl -lm -pthread|' \
		hoist.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/hoist.pc
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/hoist.pc
	install -m 644 doc/hoist.1 $(DESTDIR)$(MANDIR)/man1/hoist.1

uninstall:
	rm -f $(INSTALLED)

clean:
	rm -rf build build-asan build-tsan build-fuzz

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

# Open speed: a 100,000-tensor checkpoint, 4 shards and an index (bench/bench_open.c).
$(BUILD)/bench_open: bench/bench_open.c $(BUILD)/libhoist.a
	$(CC) $(CFLAGS_ALL) $(DEPFLAGS) -o $@ $< $(BUILD)/libhoist.a $(LDLIBS_ALL)

.PHONY: bench-open bench-open-build
bench-open-build: $(BUILD)/bench_open
bench-open: $(BUILD)/bench_open
	./$(BUILD)/bench_open

DEPS := $(LIB_OBJ:.o=.d) $(TOOL_OBJ:.o=.d) $(TEST_OBJ:.o=.d) \
	$(addprefix $(BUILD)/,cuda_abi_check.d bench_plan.d bench_open.d ceiling.d)
-include $(DEPS)
