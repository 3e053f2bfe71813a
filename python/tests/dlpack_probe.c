/*
 * dlpack_probe.c - a small shared library through which test_dlpack_header.py sees
 * include/hoist_dlpack.h as a C compiler lays it out: sizes, offsets and constants,
 * a reader for DLPack tensors another producer made, and a producer whose tensors
 * another consumer takes. Built by the test with -std=c11 -pedantic -Werror.
 */
#include "hoist_dlpack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char layout[4096];
static int deleted;

#define PUT(name, value)                                                                  \
	(used += snprintf(layout + used, sizeof(layout) - used, "%s=%lld\n", name,            \
			  (long long)(value)))

/* "name=value" lines: struct sizes and field offsets, then every constant. */
const char *probe_layout(void)
{
	size_t used = 0;

	PUT("sizeof(DLPackVersion)", sizeof(DLPackVersion));
	PUT("sizeof(DLDevice)", sizeof(DLDevice));
	PUT("sizeof(DLDeviceType)", sizeof(DLDeviceType));
	PUT("sizeof(DLDataType)", sizeof(DLDataType));
	PUT("sizeof(DLTensor)", sizeof(DLTensor));
	PUT("sizeof(DLManagedTensor)", sizeof(DLManagedTensor));
	PUT("sizeof(DLManagedTensorVersioned)", sizeof(DLManagedTensorVersioned));
	PUT("DLTensor.data", offsetof(DLTensor, data));
	PUT("DLTensor.device", offsetof(DLTensor, device));
	PUT("DLTensor.ndim", offsetof(DLTensor, ndim));
	PUT("DLTensor.dtype", offsetof(DLTensor, dtype));
	PUT("DLTensor.shape", offsetof(DLTensor, shape));
	PUT("DLTensor.strides", offsetof(DLTensor, strides));
	PUT("DLTensor.byte_offset", offsetof(DLTensor, byte_offset));
	PUT("DLDataType.bits", offsetof(DLDataType, bits));
	PUT("DLDataType.lanes", offsetof(DLDataType, lanes));
	PUT("DLManagedTensor.manager_ctx", offsetof(DLManagedTensor, manager_ctx));
	PUT("DLManagedTensor.deleter", offsetof(DLManagedTensor, deleter));
	PUT("DLManagedTensorVersioned.manager_ctx", offsetof(DLManagedTensorVersioned, manager_ctx));
	PUT("DLManagedTensorVersioned.deleter", offsetof(DLManagedTensorVersioned, deleter));
	PUT("DLManagedTensorVersioned.flags", offsetof(DLManagedTensorVersioned, flags));
	PUT("DLManagedTensorVersioned.dl_tensor", offsetof(DLManagedTensorVersioned, dl_tensor));

	PUT("DLPACK_MAJOR_VERSION", DLPACK_MAJOR_VERSION);
	PUT("DLPACK_MINOR_VERSION", DLPACK_MINOR_VERSION);
	PUT("DLPACK_FLAG_BITMASK_READ_ONLY", DLPACK_FLAG_BITMASK_READ_ONLY);
	PUT("DLPACK_FLAG_BITMASK_IS_COPIED", DLPACK_FLAG_BITMASK_IS_COPIED);
	PUT("DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED", DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED);

	PUT("kDLCPU", kDLCPU);
	PUT("kDLCUDA", kDLCUDA);
	PUT("kDLCUDAHost", kDLCUDAHost);
	PUT("kDLOpenCL", kDLOpenCL);
	PUT("kDLVulkan", kDLVulkan);
	PUT("kDLMetal", kDLMetal);
	PUT("kDLVPI", kDLVPI);
	PUT("kDLROCM", kDLROCM);
	PUT("kDLROCMHost", kDLROCMHost);
	PUT("kDLExtDev", kDLExtDev);
	PUT("kDLCUDAManaged", kDLCUDAManaged);
	PUT("kDLOneAPI", kDLOneAPI);
	PUT("kDLWebGPU", kDLWebGPU);
	PUT("kDLHexagon", kDLHexagon);
	PUT("kDLMAIA", kDLMAIA);

	PUT("kDLInt", kDLInt);
	PUT("kDLUInt", kDLUInt);
	PUT("kDLFloat", kDLFloat);
	PUT("kDLOpaqueHandle", kDLOpaqueHandle);
	PUT("kDLBfloat", kDLBfloat);
	PUT("kDLComplex", kDLComplex);
	PUT("kDLBool", kDLBool);
	PUT("kDLFloat8_e3m4", kDLFloat8_e3m4);
	PUT("kDLFloat8_e4m3", kDLFloat8_e4m3);
	PUT("kDLFloat8_e4m3b11fnuz", kDLFloat8_e4m3b11fnuz);
	PUT("kDLFloat8_e4m3fn", kDLFloat8_e4m3fn);
	PUT("kDLFloat8_e4m3fnuz", kDLFloat8_e4m3fnuz);
	PUT("kDLFloat8_e5m2", kDLFloat8_e5m2);
	PUT("kDLFloat8_e5m2fnuz", kDLFloat8_e5m2fnuz);
	PUT("kDLFloat8_e8m0fnu", kDLFloat8_e8m0fnu);
	PUT("kDLFloat6_e2m3fn", kDLFloat6_e2m3fn);
	PUT("kDLFloat6_e3m2fn", kDLFloat6_e3m2fn);
	PUT("kDLFloat4_e2m1fn", kDLFloat4_e2m1fn);
	return used < sizeof(layout) ? layout : "overflow=1\n";
}

/* out: data, device_type, device_id, ndim, code, bits, lanes, byte_offset, has
 * strides; shape and strides: up to 8 entries each. */
static void read_tensor(const DLTensor *t, int64_t *out, int64_t *shape, int64_t *strides)
{
	out[0] = (int64_t)(intptr_t)t->data;
	out[1] = t->device.device_type;
	out[2] = t->device.device_id;
	out[3] = t->ndim;
	out[4] = t->dtype.code;
	out[5] = t->dtype.bits;
	out[6] = t->dtype.lanes;
	out[7] = (int64_t)t->byte_offset;
	out[8] = t->strides != NULL;
	for (int32_t i = 0; i < t->ndim && i < 8; i++) {
		shape[i] = t->shape[i];
		strides[i] = t->strides ? t->strides[i] : 0;
	}
}

void probe_read(const DLManagedTensor *m, int64_t *out, int64_t *shape, int64_t *strides)
{
	read_tensor(&m->dl_tensor, out, shape, strides);
}

/* As probe_read, and out[9], out[10], out[11]: version major, minor, flags. */
void probe_read_versioned(const DLManagedTensorVersioned *m, int64_t *out, int64_t *shape,
			  int64_t *strides)
{
	read_tensor(&m->dl_tensor, out, shape, strides);
	out[9] = m->version.major;
	out[10] = m->version.minor;
	out[11] = (int64_t)m->flags;
}

/* One allocation: the managed struct, then shape, then strides. */
struct made {
	DLManagedTensor m;
	int64_t dims[16];
};

struct made_versioned {
	DLManagedTensorVersioned m;
	int64_t dims[16];
};

static void made_delete(DLManagedTensor *self)
{
	deleted++;
	free(self);
}

static void made_versioned_delete(DLManagedTensorVersioned *self)
{
	deleted++;
	free(self);
}

static void fill(DLTensor *t, int64_t *dims, void *data, uint8_t code, uint8_t bits,
		 int32_t ndim, const int64_t *shape, const int64_t *strides)
{
	t->data = data;
	t->device.device_type = kDLCPU;
	t->device.device_id = 0;
	t->ndim = ndim;
	t->dtype.code = code;
	t->dtype.bits = bits;
	t->dtype.lanes = 1;
	t->shape = dims;
	t->strides = dims + 8;
	t->byte_offset = 0;
	memcpy(dims, shape, (size_t)ndim * sizeof(*dims));
	memcpy(dims + 8, strides, (size_t)ndim * sizeof(*dims));
}

/* A tensor over data (borrowed; the caller keeps it alive); ndim <= 8. */
DLManagedTensor *probe_make(void *data, uint8_t code, uint8_t bits, int32_t ndim,
			    const int64_t *shape, const int64_t *strides)
{
	struct made *made = calloc(1, sizeof(*made));

	if (!made || ndim < 0 || ndim > 8) {
		free(made);
		return NULL;
	}
	fill(&made->m.dl_tensor, made->dims, data, code, bits, ndim, shape, strides);
	made->m.manager_ctx = made;
	made->m.deleter = made_delete;
	return &made->m;
}

DLManagedTensorVersioned *probe_make_versioned(void *data, uint8_t code, uint8_t bits,
					       int32_t ndim, const int64_t *shape,
					       const int64_t *strides, uint64_t flags)
{
	struct made_versioned *made = calloc(1, sizeof(*made));

	if (!made || ndim < 0 || ndim > 8) {
		free(made);
		return NULL;
	}
	fill(&made->m.dl_tensor, made->dims, data, code, bits, ndim, shape, strides);
	made->m.version.major = DLPACK_MAJOR_VERSION;
	made->m.version.minor = DLPACK_MINOR_VERSION;
	made->m.manager_ctx = made;
	made->m.deleter = made_versioned_delete;
	made->m.flags = flags;
	return &made->m;
}

/* How many tensors probe_make* made have been deleted so far. */
int probe_deleted(void)
{
	return deleted;
}
