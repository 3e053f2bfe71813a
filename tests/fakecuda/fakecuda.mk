# tests/fakecuda/fakecuda.mk - the strict fake CUDA driver and NVML (tests/fakecuda/README.md).
# Include it from the top Makefile after BUILD is set; it uses CC, BUILD, OPT, SAN, CFLAGS
# and LDFLAGS as the rest of the build does, and leaves the default goal alone.
#   make fakecuda           $(BUILD)/fakecuda/libcuda.so.1 and libnvidia-ml.so.1
#   make fakecuda-selftest  build them and the self-test, and run it
#   make fakecuda-asan      the self-test under AddressSanitizer + UBSan (build-asan/)
#   make fakecuda-tsan      the self-test under ThreadSanitizer (build-tsan/)
# Whatever loads the fake must be built with the same SAN (one sanitizer runtime per
# process): make asan / make tsan build it into their own BUILD, as they do hoist.
FAKECUDA_GOAL := $(.DEFAULT_GOAL)

CC ?= cc
BUILD ?= build
OPT ?= -O2 -g
SAN ?=

FAKECUDA_DIR := $(BUILD)/fakecuda
FAKECUDA_LIB := $(FAKECUDA_DIR)/libcuda.so.1
FAKENVML_LIB := $(FAKECUDA_DIR)/libnvidia-ml.so.1
FAKECUDA_SELFTEST := $(FAKECUDA_DIR)/fakecuda_selftest
FAKECUDA_SRC := tests/fakecuda/fakecuda.c tests/fakecuda/fakecuda_mem.c \
	tests/fakecuda/fakecuda_stream.c
FAKECUDA_OBJ := $(FAKECUDA_SRC:tests/fakecuda/%.c=$(FAKECUDA_DIR)/obj/%.o)
FAKENVML_OBJ := $(FAKECUDA_DIR)/obj/fakenvml.o
FAKECUDA_HDR := $(wildcard tests/fakecuda/*.h) src/cuda_abi.h src/nvml_abi.h
FAKECUDA_CFLAGS = -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -fPIC -pthread -Isrc \
	-Itests/fakecuda $(OPT) $(SAN) $(CFLAGS)
# -z nodelete: the engine threads run the library's code for the life of the process, so
# a dlclose must never unmap it.
FAKECUDA_LDFLAGS = -shared -pthread -Wl,-z,nodelete $(SAN) $(LDFLAGS)

.PHONY: fakecuda fakecuda-selftest fakecuda-asan fakecuda-tsan
fakecuda: $(FAKECUDA_LIB) $(FAKENVML_LIB)

$(FAKECUDA_DIR)/obj/%.o: tests/fakecuda/%.c $(FAKECUDA_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(FAKECUDA_CFLAGS) -c $< -o $@

$(FAKECUDA_LIB): $(FAKECUDA_OBJ) tests/fakecuda/fakecuda.map
	$(CC) $(FAKECUDA_LDFLAGS) -Wl,-soname,libcuda.so.1 \
		-Wl,--version-script=tests/fakecuda/fakecuda.map -o $@ $(FAKECUDA_OBJ)

$(FAKENVML_LIB): $(FAKENVML_OBJ) tests/fakecuda/fakenvml.map
	$(CC) $(FAKECUDA_LDFLAGS) -Wl,-soname,libnvidia-ml.so.1 \
		-Wl,--version-script=tests/fakecuda/fakenvml.map -o $@ $(FAKENVML_OBJ) -ldl

# The self-test links the fake (for the controls, found beside it through $ORIGIN) and
# also dlopens it and the fake NVML by path, as hoist does.
$(FAKECUDA_SELFTEST): tests/fakecuda/fakecuda_selftest.c $(FAKECUDA_HDR) $(FAKECUDA_LIB)
	$(CC) $(FAKECUDA_CFLAGS) -o $@ $< -L$(FAKECUDA_DIR) -l:libcuda.so.1 \
		-Wl,-rpath,'$$ORIGIN' -ldl -pthread $(SAN) $(LDFLAGS)

fakecuda-selftest: $(FAKECUDA_SELFTEST) $(FAKENVML_LIB)
	$(FAKECUDA_SELFTEST) $(FAKECUDA_LIB) $(FAKENVML_LIB)

fakecuda-asan:
	$(MAKE) -f $(firstword $(MAKEFILE_LIST)) BUILD=build-asan \
		OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" fakecuda-selftest

fakecuda-tsan:
	$(MAKE) -f $(firstword $(MAKEFILE_LIST)) BUILD=build-tsan OPT="-O1 -g" \
		SAN="-fsanitize=thread" fakecuda-selftest

.DEFAULT_GOAL := $(FAKECUDA_GOAL)
