/* dlpack.c - loaded tensors as DLPack managed tensors (hoist_dlpack.h).
 *
 * An export is one allocation: the managed tensor (legacy or versioned), the model
 * reference it holds, and its own shape and strides, so it outlives the checkpoint
 * the model's views borrow their shapes from. Its deleter may run on any thread (a
 * consumer drops tensors where it likes): it touches only the export and the model's
 * atomic reference count. */
#include "base.h"
#include "hoist_dlpack.h"

#include <string.h>

struct export
{
	union {
		DLManagedTensor legacy;
		DLManagedTensorVersioned versioned;
	} mt;
	struct hoist_model *model;
	int64_t dims[]; /* ndim extents, then ndim strides */
};

enum hoist_status hoist_dtype_dlpack(enum hoist_dtype dtype, DLDataType *out)
{
	uint8_t code;
	switch (dtype) {
	case HOIST_BOOL: code = kDLBool; break;
	case HOIST_U8:
	case HOIST_U16:
	case HOIST_U32:
	case HOIST_U64: code = kDLUInt; break;
	case HOIST_I8:
	case HOIST_I16:
	case HOIST_I32:
	case HOIST_I64: code = kDLInt; break;
	case HOIST_F16:
	case HOIST_F32:
	case HOIST_F64: code = kDLFloat; break;
	case HOIST_BF16: code = kDLBfloat; break;
	case HOIST_C64: code = kDLComplex; break;
	/* safetensors' F8_E4M3 is the finite-only kind (torch.float8_e4m3fn) */
	case HOIST_F8_E4M3: code = kDLFloat8_e4m3fn; break;
	case HOIST_F8_E5M2: code = kDLFloat8_e5m2; break;
	case HOIST_F8_E8M0: code = kDLFloat8_e8m0fnu; break;
	case HOIST_F4: code = kDLFloat4_e2m1fn; break;
	case HOIST_F6_E2M3: code = kDLFloat6_e2m3fn; break;
	case HOIST_F6_E3M2: code = kDLFloat6_e3m2fn; break;
	default: return hoist__error(HOIST_ERR_INVALID, "dtype %d: not a dtype", (int)dtype);
	}
	*out = (DLDataType){code, (uint8_t)hoist_dtype_bits(dtype), 1};
	return HOIST_OK;
}

static void release(struct export *e)
{
	hoist_model_free(e->model);
	hoist__free(e);
}

static void legacy_deleter(DLManagedTensor *self)
{
	if (self)
		release(self->manager_ctx);
}

static void versioned_deleter(DLManagedTensorVersioned *self)
{
	if (self)
		release(self->manager_ctx);
}

/* The export's DLTensor for tensor t, its dims written into e->dims. */
/* What an empty tensor's data points at when it has no address of its own: never
 * NULL, since torch before 2.3 never calls the deleter of a tensor whose data is NULL
 * (pytorch#117273), which would keep the whole model. No element is ever read. */
static _Alignas(256) const unsigned char empty_data[1];

static enum hoist_status describe(const struct hoist_tensor *t, unsigned flags, struct export *e,
                                  DLTensor *out)
{
	char name[32];
	DLDevice device;
	switch (t->device.kind) {
	case HOIST_DEVICE_CPU: device = (DLDevice){kDLCPU, 0}; break;
	case HOIST_DEVICE_CUDA: device = (DLDevice){kDLCUDA, t->device.index}; break;
	case HOIST_DEVICE_SIM: device = (DLDevice){kDLExtDev, t->device.index}; break;
	default:
		return hoist__error(HOIST_ERR_INVALID,
		                    "tensor \"%s\" is on %s, in no memory to export: read it",
		                    t->name, hoist_device_format(t->device, name, sizeof name));
	}
	DLDataType dtype;
	enum hoist_status st = hoist_dtype_dlpack(t->dtype, &dtype);
	if (st != HOIST_OK)
		return st;
	int64_t *shape = e->dims;
	unsigned ndim = t->ndim;
	memcpy(shape, t->shape, ndim * sizeof *shape);
	if (flags & HOIST_DLPACK_BYTES) {
		dtype = (DLDataType){kDLUInt, 8, 1};
		uint64_t rows = 1;
		for (unsigned d = 0; d + 1 < ndim; d++)
			rows *= (uint64_t)t->shape[d];
		uint64_t row_bytes =
		        ndim ? ((uint64_t)t->shape[ndim - 1] * hoist_dtype_bits(t->dtype) + 7) / 8
		             : 0;
		if (ndim > 0 && rows * row_bytes == t->nbytes) {
			shape[ndim - 1] = (int64_t)row_bytes;
		} else {
			ndim = 1;
			shape[0] = (int64_t)t->nbytes;
		}
	}
	int64_t *strides = e->dims + ndim;
	int64_t step = 1;
	for (unsigned d = ndim; d-- > 0;) {
		strides[d] = step;
		step *= shape[d];
	}
	*out = (DLTensor){
	        .data = t->nbytes || t->data ? t->data : (void *)empty_data,
	        .device = device,
	        .ndim = (int32_t)ndim,
	        .dtype = dtype,
	        .shape = shape,
	        .strides = strides,
	        .byte_offset = 0,
	};
	return HOIST_OK;
}

static enum hoist_status make(struct hoist_model *model, size_t index, unsigned flags,
                              struct export **out, DLTensor *view)
{
	const struct hoist_tensor *t = hoist_model_tensor(model, index);
	*out = NULL;
	if (!t)
		return hoist__error(HOIST_ERR_INVALID, "DLPack export: no tensor %zu", index);
	/* shape and strides; one more slot for a scalar's byte view */
	size_t dims = 2 * (size_t)t->ndim + 2;
	struct export *e = hoist__calloc(1, sizeof *e + dims * sizeof(int64_t));
	if (!e)
		return hoist__error(HOIST_ERR_NOMEM, "tensor \"%s\": out of memory exporting it",
		                    t->name);
	enum hoist_status st = describe(t, flags, e, view);
	if (st != HOIST_OK) {
		hoist__free(e);
		return st;
	}
	e->model = hoist_model_retain(model);
	*out = e;
	return HOIST_OK;
}

enum hoist_status hoist_model_dlpack(struct hoist_model *model, size_t index, unsigned flags,
                                     DLManagedTensor **out)
{
	struct export *e;
	DLTensor view;
	if (!out)
		return hoist__error(HOIST_ERR_INVALID, "hoist_model_dlpack: out is NULL");
	*out = NULL;
	enum hoist_status st = make(model, index, flags, &e, &view);
	if (st != HOIST_OK)
		return st;
	e->mt.legacy = (DLManagedTensor){view, e, legacy_deleter};
	*out = &e->mt.legacy;
	return HOIST_OK;
}

enum hoist_status hoist_model_dlpack_versioned(struct hoist_model *model, size_t index,
                                               unsigned flags, DLManagedTensorVersioned **out)
{
	struct export *e;
	DLTensor view;
	if (!out)
		return hoist__error(HOIST_ERR_INVALID, "hoist_model_dlpack_versioned: out is NULL");
	*out = NULL;
	enum hoist_status st = make(model, index, flags, &e, &view);
	if (st != HOIST_OK)
		return st;
	e->mt.versioned = (DLManagedTensorVersioned){
	        .version = {DLPACK_MAJOR_VERSION, DLPACK_MINOR_VERSION},
	        .manager_ctx = e,
	        .deleter = versioned_deleter,
	        .flags = 0,
	        .dl_tensor = view,
	};
	*out = &e->mt.versioned;
	return HOIST_OK;
}
