/*
 * hub.h - Hugging Face Hub model ids, resolved offline in the local Hub cache (hub.c);
 * hoist_checkpoint_open falls back to it for a path that names nothing on disk.
 */
#ifndef HOIST_HUB_H
#define HOIST_HUB_H

#include "base.h"

/* Whether text reads as a Hub model id, "name" or "org/name", optionally followed by
 * "@revision" (the Hub's own rules: letters, digits, '-', '_', '.', no "--" or "..",
 * at most 96 characters). */
bool hoist__hub_is_id(const char *text);

/* hoist_hub_resolve of "id" or "id@revision". Errors as hoist_hub_resolve. */
enum hoist_status hoist__hub_resolve_text(const char *text, char *out, size_t size);

#endif /* HOIST_HUB_H */
