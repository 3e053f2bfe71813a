/* cuda_abi_check.c - compile-time check of src/cuda_abi.h against the real cuda.h.
 * Built only where cuda.h exists (see the Makefile); it has no run-time content. */
#include <cuda.h>

#define HCU_RESULT_TYPE CUresult
#include "cuda_abi.h"

#include <string.h>

_Static_assert(sizeof(CUresult) == sizeof(int), "CUresult is int-sized");
_Static_assert(sizeof(CUdeviceptr) == sizeof(hcu_deviceptr), "CUdeviceptr is 64-bit");
_Static_assert(sizeof(CUdevice) == sizeof(hcu_device), "CUdevice is an int");
_Static_assert(__builtin_types_compatible_p(CUdeviceptr, hcu_deviceptr), "CUdeviceptr type");
_Static_assert(__builtin_types_compatible_p(CUdevice, hcu_device), "CUdevice type");
_Static_assert(__builtin_types_compatible_p(CUcontext, hcu_context), "CUcontext type");
_Static_assert(__builtin_types_compatible_p(CUstream, hcu_stream), "CUstream type");
_Static_assert(__builtin_types_compatible_p(CUevent, hcu_event), "CUevent type");

_Static_assert((long)HCU_SUCCESS == (long)CUDA_SUCCESS, "CUDA_SUCCESS");
_Static_assert((long)HCU_ERROR_INVALID_VALUE == (long)CUDA_ERROR_INVALID_VALUE,
               "CUDA_ERROR_INVALID_VALUE");
_Static_assert((long)HCU_ERROR_OUT_OF_MEMORY == (long)CUDA_ERROR_OUT_OF_MEMORY,
               "CUDA_ERROR_OUT_OF_MEMORY");
_Static_assert((long)HCU_ERROR_NOT_INITIALIZED == (long)CUDA_ERROR_NOT_INITIALIZED,
               "NOT_INITIALIZED");
_Static_assert((long)HCU_ERROR_NO_DEVICE == (long)CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE");
_Static_assert((long)HCU_ERROR_NOT_READY == (long)CUDA_ERROR_NOT_READY, "CUDA_ERROR_NOT_READY");
_Static_assert((long)HCU_STREAM_NON_BLOCKING == (long)CU_STREAM_NON_BLOCKING,
               "CU_STREAM_NON_BLOCKING");
_Static_assert((long)HCU_EVENT_DISABLE_TIMING == (long)CU_EVENT_DISABLE_TIMING,
               "CU_EVENT_DISABLE_TIMING");
_Static_assert((long)HCU_MEMHOSTALLOC_PORTABLE == (long)CU_MEMHOSTALLOC_PORTABLE,
               "CU_MEMHOSTALLOC_PORTABLE");

/* Each pointer type must take the address of the versioned function cuda.h declares
 * (an incompatible pointer type is an error under -Werror). */
#define CHECK_FN(type, fn) type check_##fn __attribute__((unused)) = &fn;
CHECK_FN(hcu_init_fn, cuInit)
CHECK_FN(hcu_driver_get_version_fn, cuDriverGetVersion)
CHECK_FN(hcu_device_get_count_fn, cuDeviceGetCount)
CHECK_FN(hcu_device_get_fn, cuDeviceGet)
CHECK_FN(hcu_device_get_name_fn, cuDeviceGetName)
CHECK_FN(hcu_device_total_mem_fn, cuDeviceTotalMem_v2)
CHECK_FN(hcu_primary_ctx_retain_fn, cuDevicePrimaryCtxRetain)
CHECK_FN(hcu_primary_ctx_release_fn, cuDevicePrimaryCtxRelease_v2)
CHECK_FN(hcu_ctx_set_current_fn, cuCtxSetCurrent)
CHECK_FN(hcu_ctx_synchronize_fn, cuCtxSynchronize)
CHECK_FN(hcu_mem_get_info_fn, cuMemGetInfo_v2)
CHECK_FN(hcu_mem_alloc_fn, cuMemAlloc_v2)
CHECK_FN(hcu_mem_free_fn, cuMemFree_v2)
CHECK_FN(hcu_mem_host_alloc_fn, cuMemHostAlloc)
CHECK_FN(hcu_mem_free_host_fn, cuMemFreeHost)
CHECK_FN(hcu_memcpy_htod_async_fn, cuMemcpyHtoDAsync_v2)
CHECK_FN(hcu_memcpy_dtoh_fn, cuMemcpyDtoH_v2)
CHECK_FN(hcu_stream_create_fn, cuStreamCreate)
CHECK_FN(hcu_stream_destroy_fn, cuStreamDestroy_v2)
CHECK_FN(hcu_event_create_fn, cuEventCreate)
CHECK_FN(hcu_event_destroy_fn, cuEventDestroy_v2)
CHECK_FN(hcu_event_record_fn, cuEventRecord)
CHECK_FN(hcu_event_query_fn, cuEventQuery)
CHECK_FN(hcu_event_synchronize_fn, cuEventSynchronize)
CHECK_FN(hcu_get_error_name_fn, cuGetErrorName)

/* The symbol names we dlsym must be the ones cuda.h's macros expand to. */
#define STR_(x) #x
#define STR(x) STR_(x)
_Static_assert(sizeof(STR(cuMemAlloc)) == sizeof(HCU_SYM_MEM_ALLOC), "cuMemAlloc name");
_Static_assert(sizeof(STR(cuMemFree)) == sizeof(HCU_SYM_MEM_FREE), "cuMemFree name");
_Static_assert(sizeof(STR(cuMemGetInfo)) == sizeof(HCU_SYM_MEM_GET_INFO), "cuMemGetInfo name");
_Static_assert(sizeof(STR(cuDeviceTotalMem)) == sizeof(HCU_SYM_DEVICE_TOTAL_MEM), "TotalMem");
_Static_assert(sizeof(STR(cuStreamDestroy)) == sizeof(HCU_SYM_STREAM_DESTROY), "StreamDestroy");
_Static_assert(sizeof(STR(cuEventDestroy)) == sizeof(HCU_SYM_EVENT_DESTROY), "EventDestroy");
_Static_assert(sizeof(STR(cuDevicePrimaryCtxRelease)) == sizeof(HCU_SYM_PRIMARY_CTX_RELEASE),
               "PrimaryCtxRelease");
_Static_assert(sizeof(STR(cuMemcpyHtoDAsync)) == sizeof(HCU_SYM_MEMCPY_HTOD_ASYNC), "HtoDAsync");
_Static_assert(sizeof(STR(cuMemcpyDtoH)) == sizeof(HCU_SYM_MEMCPY_DTOH), "DtoH");

/* Something the run-time can call so the object is not empty. */
int hoist_cuda_abi_names_match(void);
int hoist_cuda_abi_names_match(void)
{
	return strcmp(STR(cuMemAlloc), HCU_SYM_MEM_ALLOC) == 0 &&
	       strcmp(STR(cuMemcpyHtoDAsync), HCU_SYM_MEMCPY_HTOD_ASYNC) == 0 &&
	       strcmp(STR(cuMemcpyDtoH), HCU_SYM_MEMCPY_DTOH) == 0;
}
