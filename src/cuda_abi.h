/*
 * cuda_abi.h - the few CUDA driver API types, constants and entry points hoist uses,
 * declared from the driver API's documented ABI so hoist builds where CUDA is absent.
 * backend_cuda.c loads libcuda.so.1 at run time and looks each entry point up by its
 * versioned symbol name (the names cuda.h's macros map to: cuMemAlloc -> cuMemAlloc_v2).
 * tests/cuda_abi_check.c holds every declaration here against the real cuda.h.
 */
#ifndef HOIST_CUDA_ABI_H
#define HOIST_CUDA_ABI_H

#include <stddef.h>

/* 64-bit device pointers (CUdeviceptr_v2 on every 64-bit platform). */
typedef unsigned long long hcu_deviceptr;
typedef int hcu_device;
typedef struct CUctx_st *hcu_context;
typedef struct CUstream_st *hcu_stream;
typedef struct CUevent_st *hcu_event;
/* CUresult is an enum the size of int, returned by value in the same register as an
 * int. tests/cuda_abi_check.c defines HCU_RESULT_TYPE as CUresult so that the
 * function types below must match cuda.h's prototypes exactly. */
#ifndef HCU_RESULT_TYPE
#define HCU_RESULT_TYPE int
#endif
typedef HCU_RESULT_TYPE hcu_result;

enum {
	HCU_SUCCESS = 0,
	HCU_ERROR_INVALID_VALUE = 1,
	HCU_ERROR_OUT_OF_MEMORY = 2,
	HCU_ERROR_NOT_INITIALIZED = 3,
	HCU_ERROR_NO_DEVICE = 100,
	HCU_ERROR_NOT_READY = 600,
};

enum {
	HCU_STREAM_NON_BLOCKING = 0x1,
	HCU_EVENT_DISABLE_TIMING = 0x2,
	HCU_MEMHOSTALLOC_PORTABLE = 0x01,
};

/* The driver's calling convention on Linux is the platform's default (CUDAAPI is
 * empty there). */
typedef hcu_result (*hcu_init_fn)(unsigned int flags);
typedef hcu_result (*hcu_driver_get_version_fn)(int *version);
typedef hcu_result (*hcu_device_get_count_fn)(int *count);
typedef hcu_result (*hcu_device_get_fn)(hcu_device *device, int ordinal);
typedef hcu_result (*hcu_device_get_name_fn)(char *name, int len, hcu_device device);
typedef hcu_result (*hcu_device_total_mem_fn)(size_t *bytes, hcu_device device);
typedef hcu_result (*hcu_primary_ctx_retain_fn)(hcu_context *ctx, hcu_device device);
typedef hcu_result (*hcu_primary_ctx_release_fn)(hcu_device device);
typedef hcu_result (*hcu_ctx_set_current_fn)(hcu_context ctx);
typedef hcu_result (*hcu_ctx_synchronize_fn)(void);
typedef hcu_result (*hcu_mem_get_info_fn)(size_t *free_bytes, size_t *total_bytes);
typedef hcu_result (*hcu_mem_alloc_fn)(hcu_deviceptr *dptr, size_t bytes);
typedef hcu_result (*hcu_mem_free_fn)(hcu_deviceptr dptr);
typedef hcu_result (*hcu_mem_host_alloc_fn)(void **p, size_t bytes, unsigned int flags);
typedef hcu_result (*hcu_mem_free_host_fn)(void *p);
typedef hcu_result (*hcu_memcpy_htod_async_fn)(hcu_deviceptr dst, const void *src, size_t bytes,
                                               hcu_stream stream);
typedef hcu_result (*hcu_memcpy_dtoh_fn)(void *dst, hcu_deviceptr src, size_t bytes);
typedef hcu_result (*hcu_stream_create_fn)(hcu_stream *stream, unsigned int flags);
typedef hcu_result (*hcu_stream_destroy_fn)(hcu_stream stream);
typedef hcu_result (*hcu_event_create_fn)(hcu_event *event, unsigned int flags);
typedef hcu_result (*hcu_event_destroy_fn)(hcu_event event);
typedef hcu_result (*hcu_event_record_fn)(hcu_event event, hcu_stream stream);
typedef hcu_result (*hcu_event_query_fn)(hcu_event event);
typedef hcu_result (*hcu_event_synchronize_fn)(hcu_event event);
typedef hcu_result (*hcu_get_error_name_fn)(hcu_result error, const char **name);

/* Symbol names in libcuda.so.1 (the versioned ones where cuda.h maps a name). */
#define HCU_SYM_INIT "cuInit"
#define HCU_SYM_DRIVER_GET_VERSION "cuDriverGetVersion"
#define HCU_SYM_DEVICE_GET_COUNT "cuDeviceGetCount"
#define HCU_SYM_DEVICE_GET "cuDeviceGet"
#define HCU_SYM_DEVICE_GET_NAME "cuDeviceGetName"
#define HCU_SYM_DEVICE_TOTAL_MEM "cuDeviceTotalMem_v2"
#define HCU_SYM_PRIMARY_CTX_RETAIN "cuDevicePrimaryCtxRetain"
#define HCU_SYM_PRIMARY_CTX_RELEASE "cuDevicePrimaryCtxRelease_v2"
#define HCU_SYM_CTX_SET_CURRENT "cuCtxSetCurrent"
#define HCU_SYM_CTX_SYNCHRONIZE "cuCtxSynchronize"
#define HCU_SYM_MEM_GET_INFO "cuMemGetInfo_v2"
#define HCU_SYM_MEM_ALLOC "cuMemAlloc_v2"
#define HCU_SYM_MEM_FREE "cuMemFree_v2"
#define HCU_SYM_MEM_HOST_ALLOC "cuMemHostAlloc"
#define HCU_SYM_MEM_FREE_HOST "cuMemFreeHost"
#define HCU_SYM_MEMCPY_HTOD_ASYNC "cuMemcpyHtoDAsync_v2"
#define HCU_SYM_MEMCPY_DTOH "cuMemcpyDtoH_v2"
#define HCU_SYM_STREAM_CREATE "cuStreamCreate"
#define HCU_SYM_STREAM_DESTROY "cuStreamDestroy_v2"
#define HCU_SYM_EVENT_CREATE "cuEventCreate"
#define HCU_SYM_EVENT_DESTROY "cuEventDestroy_v2"
#define HCU_SYM_EVENT_RECORD "cuEventRecord"
#define HCU_SYM_EVENT_QUERY "cuEventQuery"
#define HCU_SYM_EVENT_SYNCHRONIZE "cuEventSynchronize"
#define HCU_SYM_GET_ERROR_NAME "cuGetErrorName"

#endif /* HOIST_CUDA_ABI_H */
