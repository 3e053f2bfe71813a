/*
 * model.h - the loaded model as the library's files above model.c reach it (the
 * verifier reads every tensor back where it landed). Programs see a model through
 * hoist.h only.
 */
#ifndef HOIST_MODEL_H
#define HOIST_MODEL_H

#include "backend.h"

/* Where tensor `index` landed: the device holding it and its device address there
 * (a host pointer where dev->host_addressable). Disk-placed tensors: *dev NULL,
 * *addr 0. The device is the model's own: its synchronous copies (copy_out) run on
 * one thread at a time. Errors: HOIST_ERR_INVALID for a NULL model or an index out
 * of range. */
enum hoist_status hoist__model_locate(const struct hoist_model *model, size_t index,
                                      struct hoist__dev **dev, uint64_t *addr);

/* The checkpoint the model was loaded from (it outlives the model). */
const struct hoist_checkpoint *hoist__model_checkpoint(const struct hoist_model *model);

#endif /* HOIST_MODEL_H */
