/* registry.c - the registry of device backends: which backend serves a device kind,
 * the configuration each one gets from the options, and the public device listing. */
#include "registry.h"

#include <stdio.h>
#include <string.h>

const struct hoist__backend *hoist__backend_for(enum hoist_device_kind kind)
{
	static const struct hoist__backend *const by_kind[] = {
	        [HOIST_DEVICE_CPU] = &hoist__backend_host,
	        [HOIST_DEVICE_CUDA] = &hoist__backend_cuda,
	        [HOIST_DEVICE_SIM] = &hoist__backend_sim,
	};
	return (unsigned)kind < HOIST__ARRAY_SIZE(by_kind) ? by_kind[kind] : NULL;
}

/* The GPUs opt->device targets, for the cuda backend. */
static int cuda_target(const struct hoist_options *opt)
{
	struct hoist_device d;
	if (!opt || !opt->device)
		return -1;
	if (hoist_device_parse(opt->device, &d) != HOIST_OK || d.kind != HOIST_DEVICE_CUDA)
		return -2;
	return d.index;
}

/* The configuration the options give a backend; *host is filled for the host's,
 * *cuda for cuda's. */
static const void *config_for(enum hoist_device_kind kind, const struct hoist_options *opt,
                              struct hoist__host_config *host, struct hoist__cuda_config *cuda)
{
	switch (kind) {
	case HOIST_DEVICE_CPU:
		host->memory = opt ? opt->host_memory : HOIST_HOST_DEFAULT;
		host->pinner = &hoist__backend_cuda;
		return host;
	case HOIST_DEVICE_SIM: return opt ? opt->sim : NULL;
	case HOIST_DEVICE_CUDA: cuda->target = cuda_target(opt); return cuda;
	case HOIST_DEVICE_DISK: break;
	}
	return NULL;
}

enum hoist_status hoist_device_list(enum hoist_device_kind kind, const struct hoist_options *opt,
                                    struct hoist_device_info *out, size_t cap, size_t *count)
{
	struct hoist__host_config host;
	struct hoist__cuda_config cuda;
	const struct hoist__backend *b = hoist__backend_for(kind);
	if (count)
		*count = 0;
	if (!count || (!out && cap))
		return hoist__error(HOIST_ERR_INVALID, "hoist_device_list: NULL argument");
	if (!b)
		return hoist__error(HOIST_ERR_INVALID,
		                    "no device list for device kind %d (disk is "
		                    "no device to list)",
		                    (int)kind);
	return b->list(config_for(kind, opt, &host, &cuda), out, cap, count);
}

enum hoist_status hoist__device_open(struct hoist_device device, const struct hoist_options *opt,
                                     struct hoist__dev **out)
{
	struct hoist__host_config host;
	struct hoist__cuda_config cuda;
	char name[24];
	const struct hoist__backend *b = hoist__backend_for(device.kind);
	*out = NULL;
	hoist_device_format(device, name, sizeof name);
	if (!b || device.index < 0)
		return hoist__error(HOIST_ERR_INVALID, "%s is not a device to open", name);
	enum hoist_status st =
	        b->open(config_for(device.kind, opt, &host, &cuda), device.index, out);
	if (st != HOIST_OK) {
		/* name the device, unless the backend's message already starts with it */
		size_t n = strlen(name);
		if (strncmp(hoist_errmsg(), name, n) != 0 || hoist_errmsg()[n] != ':')
			hoist__error_prefix("%s", name);
	}
	return st;
}
