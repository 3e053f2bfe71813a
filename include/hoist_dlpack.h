/*
 * hoist_dlpack.h - the DLPack exchange structs, as hoist hands tensors out.
 *
 * hoist gives loaded tensors to PyTorch, NumPy, CuPy and C consumers as DLPack
 * tensors. This header declares the structs and constants of the DLPack
 * specification, version 1.1 (the C header include/dlpack/dlpack.h of
 * github.com/dmlc/dlpack at v1.1, and its Python specification, which the Python
 * array API standard adopts). They are hoist's own declarations, written from that
 * specification field by field; the names, values and layouts are the
 * specification's, so code written against DLPack compiles against this header
 * unchanged, and a struct filled here is read correctly by any DLPack consumer.
 *
 * This header and the project's dlpack.h share the include guard DLPACK_DLPACK_H_:
 * whichever a translation unit includes first supplies the declarations and the
 * other is skipped. That is safe with any dlpack.h of major version 1 (minor
 * versions only append enum values). A dlpack.h older than 1.0 has no versioned
 * struct; including it first stops the build with an #error below.
 *
 * What a consumer must know (from the specification):
 *  - Ownership: a DLManagedTensor / DLManagedTensorVersioned lends memory; the
 *    consumer calls deleter(self) exactly once when done (deleter may be NULL).
 *    The deleter frees the struct itself too.
 *  - Version: a consumer that reads version.major != DLPACK_MAJOR_VERSION may only
 *    call the deleter; every other field may have moved.
 *  - DLTensor.strides counts elements, not bytes. Version 1.1 allows NULL for a
 *    compact row-major tensor; hoist always sets it, which later versions require.
 *  - byte_offset is added to data. hoist never exports a NULL data, an empty
 *    tensor's included (torch before 2.3 leaks a tensor whose data is NULL).
 *  - Sub-byte types (float4, float6) are packed, element i in bits
 *    [i * bits, (i + 1) * bits) counted from the least significant bit, unless
 *    DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED says each element fills a byte.
 *
 * Python capsules: __dlpack__() returns a PyCapsule named "dltensor" holding a
 * DLManagedTensor, or "dltensor_versioned" holding a DLManagedTensorVersioned when
 * the consumer passed max_version >= (1, 0). A consumer that takes ownership renames
 * the capsule to "used_dltensor" / "used_dltensor_versioned", and the capsule's
 * destructor calls the deleter only while the capsule still has its first name.
 * __dlpack_device__() returns (device_type, device_id) as in DLDevice.
 */
#ifndef HOIST_DLPACK_H
#define HOIST_DLPACK_H

#include <stddef.h>
#include <stdint.h>

/* The capsule names of the Python specification (statically allocated, as it asks). */
#define HOIST_DLPACK_CAPSULE "dltensor"
#define HOIST_DLPACK_CAPSULE_USED "used_dltensor"
#define HOIST_DLPACK_CAPSULE_VERSIONED "dltensor_versioned"
#define HOIST_DLPACK_CAPSULE_VERSIONED_USED "used_dltensor_versioned"

#ifndef DLPACK_DLPACK_H_
#define DLPACK_DLPACK_H_

/* The version these declarations follow. A major change moves the fields of
 * DLManagedTensorVersioned; a minor change only appends enum values. */
#define DLPACK_MAJOR_VERSION 1
#define DLPACK_MINOR_VERSION 1

#ifdef __cplusplus
#define DLPACK_EXTERN_C extern "C"
#else
#define DLPACK_EXTERN_C
#endif

/* Export decoration the specification defines for Windows DLLs; empty elsewhere. */
#ifdef _WIN32
#ifdef DLPACK_EXPORTS
#define DLPACK_DLL __declspec(dllexport)
#else
#define DLPACK_DLL __declspec(dllimport)
#endif
#else
#define DLPACK_DLL
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The version a DLManagedTensorVersioned was produced under. */
typedef struct {
	uint32_t major;
	uint32_t minor;
} DLPackVersion;

/* Where the memory lives. 32 bits wide in C (an enum is an int on every ABI hoist
 * builds for) and in C++ (fixed below). Values 5 and 6 are unassigned. */
#ifdef __cplusplus
typedef enum : int32_t {
#else
typedef enum {
#endif
	kDLCPU = 1,      /* host memory, pageable or not */
	kDLCUDA = 2,     /* CUDA device memory (cuMemAlloc) */
	kDLCUDAHost = 3, /* page-locked host memory (cuMemAllocHost / cudaMallocHost) */
	kDLOpenCL = 4,
	kDLVulkan = 7,
	kDLMetal = 8,
	kDLVPI = 9,          /* Verilog simulator buffers */
	kDLROCM = 10,        /* AMD GPU memory */
	kDLROCMHost = 11,    /* page-locked host memory through ROCm */
	kDLExtDev = 12,      /* reserved for experiments; meaning is up to the two sides */
	kDLCUDAManaged = 13, /* CUDA unified memory (cudaMallocManaged) */
	kDLOneAPI = 14,      /* oneAPI unified shared memory */
	kDLWebGPU = 15,
	kDLHexagon = 16, /* Qualcomm Hexagon DSP */
	kDLMAIA = 17,    /* Microsoft MAIA */
} DLDeviceType;

/* A device: its type and index. device_id is 0 for host memory of every kind
 * (kDLCPU, kDLCUDAHost, kDLCUDAManaged), else the producer's device ordinal. */
typedef struct {
	DLDeviceType device_type;
	int32_t device_id;
} DLDevice;

/* Element type families. DLDataType stores the code in a uint8_t. */
typedef enum {
	kDLInt = 0U,          /* two's complement signed integer */
	kDLUInt = 1U,         /* unsigned integer */
	kDLFloat = 2U,        /* IEEE 754 binary floating point (16, 32, 64 bits) */
	kDLOpaqueHandle = 3U, /* reserved for tests; both sides must agree on it */
	kDLBfloat = 4U,       /* bfloat16: bits = 16 */
	kDLComplex = 5U,      /* real and imaginary parts side by side; bits = both */
	kDLBool = 6U,         /* bits = 8: one byte per element, 0 or 1 */
	/* 8-bit floats (bits = 8). "fn": finite only, no infinities; "uz": no negative
	 * zero, a single NaN; e4m3b11fnuz has exponent bias 11; e8m0fnu is an unsigned
	 * power of two (the MX scale type). */
	kDLFloat8_e3m4 = 7U,
	kDLFloat8_e4m3 = 8U,
	kDLFloat8_e4m3b11fnuz = 9U,
	kDLFloat8_e4m3fn = 10U,
	kDLFloat8_e4m3fnuz = 11U,
	kDLFloat8_e5m2 = 12U,
	kDLFloat8_e5m2fnuz = 13U,
	kDLFloat8_e8m0fnu = 14U,
	/* 6-bit floats: bits must be 6; a consumer rejects any other value. */
	kDLFloat6_e2m3fn = 15U,
	kDLFloat6_e3m2fn = 16U,
	/* 4-bit float: bits must be 4; a consumer rejects any other value. */
	kDLFloat4_e2m1fn = 17U,
} DLDataTypeCode;

/* An element type in the producer's native byte order: code from DLDataTypeCode,
 * bits per lane, lanes per element (1 for scalars; > 1 for vector types).
 * Examples: float32 {kDLFloat, 32, 1}; bfloat16 {kDLBfloat, 16, 1}; bool
 * {kDLBool, 8, 1}; complex64 {kDLComplex, 64, 1}; float8_e4m3fn {kDLFloat8_e4m3fn,
 * 8, 1}; float4_e2m1fn {kDLFloat4_e2m1fn, 4, 1}. */
typedef struct {
	uint8_t code;
	uint8_t bits;
	uint16_t lanes;
} DLDataType;

/* A strided n-dimensional view; it owns nothing.
 *  data:        start of the allocation: a device address for device memory (not
 *               dereferenceable on the host). A producer may leave it NULL for a
 *               tensor of zero elements; hoist does not.
 *               The specification asks for 256-byte alignment with the view's start
 *               in byte_offset, but notes that major producers put the start in data
 *               and byte_offset 0; consumers must not assume the alignment.
 *  ndim:        number of dimensions, 0 for a scalar.
 *  shape:       ndim extents.
 *  strides:     ndim strides in elements (not bytes); NULL (allowed by 1.1) means
 *               compact row-major.
 *  byte_offset: bytes from data to the first element.
 * Bytes of a compact tensor: product(shape) * ((bits * lanes + 7) / 8). */
typedef struct {
	void *data;
	DLDevice device;
	int32_t ndim;
	DLDataType dtype;
	int64_t *shape;
	int64_t *strides;
	uint64_t byte_offset;
} DLTensor;

/* The unversioned managed tensor (DLPack before 1.0; the capsule "dltensor").
 * Deprecated by the specification but still the only form older consumers take
 * (PyTorch 1.13 among them: its from_dlpack reads no other capsule). manager_ctx
 * is the producer's; deleter(self) releases what it holds and frees self; either
 * may be NULL. */
typedef struct DLManagedTensor {
	DLTensor dl_tensor;
	void *manager_ctx;
	void (*deleter)(struct DLManagedTensor *self);
} DLManagedTensor;

/* Bits of DLManagedTensorVersioned.flags; 0 by default. */
/* The consumer must not write through the view. */
#define DLPACK_FLAG_BITMASK_READ_ONLY (1UL << 0UL)
/* The producer made a copy for this export: the consumer owns it alone until it
 * calls the deleter. */
#define DLPACK_FLAG_BITMASK_IS_COPIED (1UL << 1UL)
/* A sub-byte type (float4, float6) is padded to one element per byte rather than
 * packed. */
#define DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED (1UL << 2UL)

/* The managed tensor of DLPack 1.x (the capsule "dltensor_versioned"). version,
 * manager_ctx, deleter and flags keep their places in every future major version,
 * so a consumer can always read version and call the deleter; dl_tensor is valid
 * only when version.major matches. */
typedef struct DLManagedTensorVersioned {
	DLPackVersion version;
	void *manager_ctx;
	void (*deleter)(struct DLManagedTensorVersioned *self);
	uint64_t flags;
	DLTensor dl_tensor;
} DLManagedTensorVersioned;

#ifdef __cplusplus
}
#endif

#endif /* DLPACK_DLPACK_H_ */

#if !defined(DLPACK_MAJOR_VERSION) || DLPACK_MAJOR_VERSION != 1
#error "hoist_dlpack.h: a dlpack.h of another major version than 1 was included first"
#endif

/* ------------------------------------------------------------------------------ */
/* hoist's exports: a loaded tensor as a DLPack managed tensor.                     */

#include "hoist.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The DLPack element type of a hoist dtype: BOOL {kDLBool, 8}, U8..U64 {kDLUInt},
 * I8..I64 {kDLInt}, F16 F32 F64 {kDLFloat}, BF16 {kDLBfloat, 16}, C64 {kDLComplex,
 * 64}, F8_E4M3 {kDLFloat8_e4m3fn, 8}, F8_E5M2 {kDLFloat8_e5m2, 8}, F8_E8M0
 * {kDLFloat8_e8m0fnu, 8}, F4 {kDLFloat4_e2m1fn, 4}, F6_E2M3 {kDLFloat6_e2m3fn, 6},
 * F6_E3M2 {kDLFloat6_e3m2fn, 6}; lanes 1. Errors: HOIST_ERR_INVALID for a value that
 * is not a dtype. */
enum hoist_status hoist_dtype_dlpack(enum hoist_dtype dtype, DLDataType *out);

/* Flags of an export. */
enum {
	/* The tensor's bytes as uint8 ({kDLUInt, 8}): the shape with its last dimension
	 * counted in bytes (a scalar, or a packed tensor whose rows do not end on a byte,
	 * as one dimension of all its bytes). For consumers that lack the dtype (NumPy and
	 * bfloat16; torch before 2.1 and float8; most and float4), which view the bytes as
	 * the dtype themselves. */
	HOIST_DLPACK_BYTES = 1u << 0,
};

/* Exports tensor `index` of model as a DLPack managed tensor: the legacy
 * DLManagedTensor (the capsule "dltensor") or the versioned one of DLPack 1.1
 * ("dltensor_versioned"; flags 0: the views are writable, host mmap views included,
 * which are private). data is the tensor's address (for an empty tensor without
 * one, a static address: never NULL, and no element is read), byte_offset 0,
 * strides always set (compact row-major, in elements); the device is
 * kDLCPU for host memory of every kind, kDLCUDA N for cuda:N, kDLExtDev N for sim:N
 * (no consumer reads it: tests only). The export holds a reference on the model:
 * the memory stays until the model is freed and every export's deleter has run,
 * which may happen on any thread. The shape is the export's own copy.
 * Errors: HOIST_ERR_INVALID (no such tensor; a disk-placed tensor, which is in no
 * memory: read it), HOIST_ERR_NOMEM. */
enum hoist_status hoist_model_dlpack(struct hoist_model *model, size_t index, unsigned flags,
                                     DLManagedTensor **out);
enum hoist_status hoist_model_dlpack_versioned(struct hoist_model *model, size_t index,
                                               unsigned flags, DLManagedTensorVersioned **out);

#ifdef __cplusplus
}
#endif

#endif /* HOIST_DLPACK_H */
