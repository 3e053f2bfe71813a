/*
 * cuda_abi.h - the few CUDA driver API types, constants and entry points hoist uses,
 * declared from the driver API's documented ABI so hoist builds where CUDA is absent.
 * backend_cuda.c loads libcuda.so.1 at run time and looks each entry point up by its
 * versioned symbol name (the names cuda.h's macros map to: cuMemAlloc -> cuMemAlloc_v2).
 * tests/cuda_abi_check.c holds every declaration here against the real cuda.h.
 * tests/fakecuda/, the strict fake driver the tests run hoist against, exports every
 * entry point declared here with these types, so some are declared before hoist calls
 * them.
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
/* A host function queued with cuLaunchHostFunc (CUhostFn). */
typedef void (*hcu_host_fn)(void *user);
/* cuCtxCreate_v4's optional parameters (CUctxCreateParams); hoist passes NULL. */
struct CUctxCreateParams_st;
/* CUresult is an enum the size of int, returned by value in the same register as an
 * int. tests/cuda_abi_check.c defines HCU_RESULT_TYPE as CUresult so that the
 * function types below must match cuda.h's prototypes exactly. */
#ifndef HCU_RESULT_TYPE
#define HCU_RESULT_TYPE int
#endif
typedef HCU_RESULT_TYPE hcu_result;
/* CUdevice_attribute is an enum as well, passed by value like an int; the check
 * defines this as CUdevice_attribute. */
#ifndef HCU_DEVICE_ATTRIBUTE_TYPE
#define HCU_DEVICE_ATTRIBUTE_TYPE int
#endif
typedef HCU_DEVICE_ATTRIBUTE_TYPE hcu_device_attribute;

enum {
	HCU_SUCCESS = 0,
	HCU_ERROR_INVALID_VALUE = 1,
	HCU_ERROR_OUT_OF_MEMORY = 2,
	HCU_ERROR_NOT_INITIALIZED = 3,
	HCU_ERROR_NO_DEVICE = 100,
	HCU_ERROR_NOT_READY = 600,
};

/* More results, named where a caller must tell them apart (and where tests/fakecuda
 * returns them). */
enum {
	HCU_ERROR_DEINITIALIZED = 4,
	HCU_ERROR_INVALID_DEVICE = 101,
	HCU_ERROR_INVALID_CONTEXT = 201,
	HCU_ERROR_INVALID_HANDLE = 400,
	HCU_ERROR_ILLEGAL_ADDRESS = 700,
	HCU_ERROR_CONTEXT_IS_DESTROYED = 709,
	HCU_ERROR_HOST_MEMORY_ALREADY_REGISTERED = 712,
	HCU_ERROR_HOST_MEMORY_NOT_REGISTERED = 713,
	HCU_ERROR_LAUNCH_FAILED = 719,
	HCU_ERROR_NOT_PERMITTED = 800,
	HCU_ERROR_NOT_SUPPORTED = 801,
	HCU_ERROR_SYSTEM_NOT_READY = 802,
	HCU_ERROR_UNKNOWN = 999,
};

enum {
	HCU_STREAM_NON_BLOCKING = 0x1,
	HCU_EVENT_DISABLE_TIMING = 0x2,
	HCU_MEMHOSTALLOC_PORTABLE = 0x01,
};

enum {
	HCU_STREAM_DEFAULT = 0x0,
	HCU_EVENT_DEFAULT = 0x0,
	HCU_EVENT_BLOCKING_SYNC = 0x1,
	HCU_EVENT_INTERPROCESS = 0x4,
	HCU_EVENT_WAIT_DEFAULT = 0x0,
	HCU_MEMHOSTALLOC_DEVICEMAP = 0x02,
	HCU_MEMHOSTALLOC_WRITECOMBINED = 0x04,
	HCU_MEMHOSTREGISTER_PORTABLE = 0x01,
	HCU_MEMHOSTREGISTER_DEVICEMAP = 0x02,
	HCU_MEMHOSTREGISTER_IOMEMORY = 0x04,
	/* Supported where CU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_SUPPORTED is 1; else
	 * cuMemHostRegister fails with CUDA_ERROR_NOT_SUPPORTED. */
	HCU_MEMHOSTREGISTER_READ_ONLY = 0x08,
	HCU_CTX_SCHED_BLOCKING_SYNC = 0x04,
	HCU_CTX_FLAGS_MASK = 0xff,
};

/* The special stream handles: the legacy default stream (the NULL stream's meaning
 * unless a program is built for per-thread default streams) and the per-thread one. */
#define HCU_STREAM_LEGACY ((hcu_stream)0x1)
#define HCU_STREAM_PER_THREAD ((hcu_stream)0x2)

/* Device attributes (CUdevice_attribute). */
enum {
	HCU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1,
	HCU_DEVICE_ATTRIBUTE_WARP_SIZE = 10,
	HCU_DEVICE_ATTRIBUTE_CLOCK_RATE = 13,
	HCU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
	HCU_DEVICE_ATTRIBUTE_INTEGRATED = 18,
	HCU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY = 19,
	HCU_DEVICE_ATTRIBUTE_COMPUTE_MODE = 20,
	HCU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS = 31,
	HCU_DEVICE_ATTRIBUTE_ECC_ENABLED = 32,
	HCU_DEVICE_ATTRIBUTE_PCI_BUS_ID = 33,
	HCU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID = 34,
	HCU_DEVICE_ATTRIBUTE_TCC_DRIVER = 35,
	HCU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH = 37,
	HCU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38,
	HCU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT = 40,
	HCU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING = 41,
	HCU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID = 50,
	HCU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
	HCU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
	HCU_DEVICE_ATTRIBUTE_MANAGED_MEMORY = 83,
	HCU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS = 88,
	HCU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS = 89,
	HCU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM = 91,
	HCU_DEVICE_ATTRIBUTE_HOST_REGISTER_SUPPORTED = 99,
	HCU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED = 102,
	HCU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_SUPPORTED = 113,
	HCU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED = 115,
	HCU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED = 116,
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
typedef hcu_result (*hcu_get_error_string_fn)(hcu_result error, const char **text);
typedef hcu_result (*hcu_device_get_attribute_fn)(int *value, hcu_device_attribute attribute,
                                                  hcu_device device);
typedef hcu_result (*hcu_device_get_pci_bus_id_fn)(char *bus_id, int len, hcu_device device);
/* cuCtxCreate_v2 is what cuda.h before 12.5 maps cuCtxCreate to (cudaTypedefs.h:
 * PFN_cuCtxCreate_v3020); cuda.h 13 maps it to cuCtxCreate_v4. Drivers export both. */
typedef hcu_result (*hcu_ctx_create_fn)(hcu_context *ctx, unsigned int flags, hcu_device device);
typedef hcu_result (*hcu_ctx_create_v4_fn)(hcu_context *ctx, struct CUctxCreateParams_st *params,
                                           unsigned int flags, hcu_device device);
typedef hcu_result (*hcu_ctx_destroy_fn)(hcu_context ctx);
typedef hcu_result (*hcu_ctx_get_current_fn)(hcu_context *ctx);
typedef hcu_result (*hcu_ctx_push_current_fn)(hcu_context ctx);
typedef hcu_result (*hcu_ctx_pop_current_fn)(hcu_context *ctx);
typedef hcu_result (*hcu_ctx_get_device_fn)(hcu_device *device);
typedef hcu_result (*hcu_mem_host_register_fn)(void *p, size_t bytes, unsigned int flags);
typedef hcu_result (*hcu_mem_host_unregister_fn)(void *p);
typedef hcu_result (*hcu_memcpy_htod_fn)(hcu_deviceptr dst, const void *src, size_t bytes);
typedef hcu_result (*hcu_memcpy_dtoh_async_fn)(void *dst, hcu_deviceptr src, size_t bytes,
                                               hcu_stream stream);
typedef hcu_result (*hcu_memset_d8_fn)(hcu_deviceptr dst, unsigned char value, size_t count);
typedef hcu_result (*hcu_stream_synchronize_fn)(hcu_stream stream);
typedef hcu_result (*hcu_stream_query_fn)(hcu_stream stream);
typedef hcu_result (*hcu_stream_wait_event_fn)(hcu_stream stream, hcu_event event,
                                               unsigned int flags);
typedef hcu_result (*hcu_launch_host_func_fn)(hcu_stream stream, hcu_host_fn fn, void *user);

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
#define HCU_SYM_GET_ERROR_STRING "cuGetErrorString"
#define HCU_SYM_DEVICE_GET_ATTRIBUTE "cuDeviceGetAttribute"
#define HCU_SYM_DEVICE_GET_PCI_BUS_ID "cuDeviceGetPCIBusId"
#define HCU_SYM_CTX_CREATE "cuCtxCreate_v2"
#define HCU_SYM_CTX_CREATE_V4 "cuCtxCreate_v4"
#define HCU_SYM_CTX_DESTROY "cuCtxDestroy_v2"
#define HCU_SYM_CTX_GET_CURRENT "cuCtxGetCurrent"
#define HCU_SYM_CTX_PUSH_CURRENT "cuCtxPushCurrent_v2"
#define HCU_SYM_CTX_POP_CURRENT "cuCtxPopCurrent_v2"
#define HCU_SYM_CTX_GET_DEVICE "cuCtxGetDevice"
#define HCU_SYM_MEM_HOST_REGISTER "cuMemHostRegister_v2"
#define HCU_SYM_MEM_HOST_UNREGISTER "cuMemHostUnregister"
#define HCU_SYM_MEMCPY_HTOD "cuMemcpyHtoD_v2"
#define HCU_SYM_MEMCPY_DTOH_ASYNC "cuMemcpyDtoHAsync_v2"
#define HCU_SYM_MEMSET_D8 "cuMemsetD8_v2"
#define HCU_SYM_STREAM_SYNCHRONIZE "cuStreamSynchronize"
#define HCU_SYM_STREAM_QUERY "cuStreamQuery"
#define HCU_SYM_STREAM_WAIT_EVENT "cuStreamWaitEvent"
#define HCU_SYM_LAUNCH_HOST_FUNC "cuLaunchHostFunc"

#endif /* HOIST_CUDA_ABI_H */
