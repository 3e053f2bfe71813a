/*
 * fuzzdrv.h - what each fuzz target does with one input, shared by the libFuzzer
 * targets (tests/fuzz_NAME.c, `make fuzz`) and the C tests that replay the corpora
 * and the saved crashes (tests/test_fuzz_regressions.c), so a finding replays through
 * exactly the code that found it.
 *
 * Each driver writes the input as the file it stands for into a scratch directory,
 * next to fixed, valid companions, and runs the library's public path over it. It
 * then checks what the library promises whatever the input: a status among those the
 * call documents, a message on every error, and on success a result that holds
 * together (tensors inside their files, names found by name, plans inside their
 * arenas, loaded bytes equal to the file's). A broken promise is a finding: the
 * fuzzer aborts on it, the tests fail.
 *
 * Targets (tests/fuzz/NAME/ is each one's corpus, tests/fuzz/NAME.dict its keys):
 *   index       model.safetensors.index.json, over fixed shards
 *   config      config.json: as hoist_checkpoint_open reads it, and as synth lays
 *               out a model from it
 *   device_map  a device-map file planned against a fixed checkpoint on sim and cpu
 *   open        a whole checkpoint directory, split by FUZZ_FILE_MARK lines into an
 *               index and files: opened, planned and loaded (cpu, sim), bytes checked
 */
#ifndef HOIST_FUZZDRV_H
#define HOIST_FUZZDRV_H

#include "hoist.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The open target's framing: the input up to the first mark is the index (none when
 * empty); each mark is followed by a file name up to the newline, then the file's
 * bytes up to the next mark. Names are kept to [A-Za-z0-9._-] (64 at most, not "."
 * or ".."), eight files at most. */
#define FUZZ_FILE_MARK "\n#FILE "

struct fuzz_result {
	enum hoist_status status; /* of the call the target is about */
	char message[1100];       /* hoist_errmsg() then */
	bool broken;              /* a promise was broken: why says which */
	char why[600];
};

typedef void (*fuzz_driver)(const uint8_t *data, size_t size, struct fuzz_result *r);

void fuzz_index(const uint8_t *data, size_t size, struct fuzz_result *r);
void fuzz_config(const uint8_t *data, size_t size, struct fuzz_result *r);
void fuzz_device_map(const uint8_t *data, size_t size, struct fuzz_result *r);
void fuzz_open(const uint8_t *data, size_t size, struct fuzz_result *r);

/* The driver of a target by name ("index", ...), or NULL. */
fuzz_driver fuzz_driver_named(const char *name);

/* Where the drivers write their files: `dir` (existing), or, when never set, a fresh
 * directory under $TMPDIR (or /tmp) removed at exit. */
void fuzz_set_dir(const char *dir);

/* For the libFuzzer targets: runs the driver, aborts with the reason on a broken
 * promise. With FUZZ_VERBOSE set, prints each input's status and message (to see
 * what a corpus reaches: ./build-fuzz/fuzz_open tests/fuzz/open/\*). */
int fuzz_run(fuzz_driver driver, const uint8_t *data, size_t size);

#endif
