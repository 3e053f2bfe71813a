/*
 * sha256.h - SHA-256 as FIPS 180-4 specifies it (sha256.c), for `hoist verify
 * --sha256`, whose lines other tools (sha256sum, safetensors' manifests) can be held
 * against. Streaming: init, update any number of times, final.
 */
#ifndef HOIST_SHA256_H
#define HOIST_SHA256_H

#include "base.h"

struct hoist__sha256 {
	uint32_t h[8];
	uint64_t bytes; /* message length so far */
	uint8_t block[64];
	size_t fill; /* bytes waiting in block */
};

void hoist__sha256_init(struct hoist__sha256 *s);
void hoist__sha256_update(struct hoist__sha256 *s, const void *data, size_t n);
/* Pads, writes the 32-byte digest (big-endian words), and leaves s to be init'ed again. */
void hoist__sha256_final(struct hoist__sha256 *s, uint8_t out[32]);

#endif /* HOIST_SHA256_H */
