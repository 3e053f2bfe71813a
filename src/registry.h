/*
 * registry.h - the device backends as the layers above reach them (registry.c): which
 * backend serves a device kind, and a device opened with the configuration the
 * options give its backend. hoist_device_list (hoist.h) is here too.
 */
#ifndef HOIST_REGISTRY_H
#define HOIST_REGISTRY_H

#include "backend.h"

/* The backend of a device kind; NULL for disk. */
const struct hoist__backend *hoist__backend_for(enum hoist_device_kind kind);

/* Opens `device` (an index >= 0) with the configuration opt gives its backend; the
 * message of a failure starts with the device's name. Errors as the backend's open;
 * HOIST_ERR_INVALID for disk. */
enum hoist_status hoist__device_open(struct hoist_device device, const struct hoist_options *opt,
                                     struct hoist__dev **out);

#endif /* HOIST_REGISTRY_H */
