/* cuda_abi_check.c - compile-time check of src/cuda_abi.h (and of the result names of
 * tests/fakecuda/cuda_results.h) against the real cuda.h, and of src/nvml_abi.h against
 * nvml.h where that exists. Built only where cuda.h exists (see the Makefile); it has no
 * run-time content. */
#include <cuda.h>

#define HCU_RESULT_TYPE CUresult
#define HCU_DEVICE_ATTRIBUTE_TYPE CUdevice_attribute
#include "cuda_abi.h"
#include "fakecuda/cuda_results.h"

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
_Static_assert(__builtin_types_compatible_p(CUhostFn, hcu_host_fn), "CUhostFn type");
_Static_assert(__builtin_types_compatible_p(CUctxCreateParams, struct CUctxCreateParams_st),
               "CUctxCreateParams type");

/* Every value cuda_abi.h names, against cuda.h's name for it. */
#define SAME(ours, theirs) _Static_assert((long)(ours) == (long)(theirs), #theirs);
SAME(HCU_ERROR_DEINITIALIZED, CUDA_ERROR_DEINITIALIZED)
SAME(HCU_ERROR_INVALID_DEVICE, CUDA_ERROR_INVALID_DEVICE)
SAME(HCU_ERROR_INVALID_CONTEXT, CUDA_ERROR_INVALID_CONTEXT)
SAME(HCU_ERROR_INVALID_HANDLE, CUDA_ERROR_INVALID_HANDLE)
SAME(HCU_ERROR_ILLEGAL_ADDRESS, CUDA_ERROR_ILLEGAL_ADDRESS)
SAME(HCU_ERROR_CONTEXT_IS_DESTROYED, CUDA_ERROR_CONTEXT_IS_DESTROYED)
SAME(HCU_ERROR_HOST_MEMORY_ALREADY_REGISTERED, CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED)
SAME(HCU_ERROR_HOST_MEMORY_NOT_REGISTERED, CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED)
SAME(HCU_ERROR_LAUNCH_FAILED, CUDA_ERROR_LAUNCH_FAILED)
SAME(HCU_ERROR_NOT_PERMITTED, CUDA_ERROR_NOT_PERMITTED)
SAME(HCU_ERROR_NOT_SUPPORTED, CUDA_ERROR_NOT_SUPPORTED)
SAME(HCU_ERROR_SYSTEM_NOT_READY, CUDA_ERROR_SYSTEM_NOT_READY)
SAME(HCU_ERROR_UNKNOWN, CUDA_ERROR_UNKNOWN)
SAME(HCU_STREAM_DEFAULT, CU_STREAM_DEFAULT)
SAME(HCU_EVENT_DEFAULT, CU_EVENT_DEFAULT)
SAME(HCU_EVENT_BLOCKING_SYNC, CU_EVENT_BLOCKING_SYNC)
SAME(HCU_EVENT_INTERPROCESS, CU_EVENT_INTERPROCESS)
SAME(HCU_EVENT_WAIT_DEFAULT, CU_EVENT_WAIT_DEFAULT)
SAME(HCU_MEMHOSTALLOC_DEVICEMAP, CU_MEMHOSTALLOC_DEVICEMAP)
SAME(HCU_MEMHOSTALLOC_WRITECOMBINED, CU_MEMHOSTALLOC_WRITECOMBINED)
SAME(HCU_MEMHOSTREGISTER_PORTABLE, CU_MEMHOSTREGISTER_PORTABLE)
SAME(HCU_MEMHOSTREGISTER_DEVICEMAP, CU_MEMHOSTREGISTER_DEVICEMAP)
SAME(HCU_MEMHOSTREGISTER_IOMEMORY, CU_MEMHOSTREGISTER_IOMEMORY)
SAME(HCU_MEMHOSTREGISTER_READ_ONLY, CU_MEMHOSTREGISTER_READ_ONLY)
SAME(HCU_CTX_SCHED_BLOCKING_SYNC, CU_CTX_SCHED_BLOCKING_SYNC)
SAME(HCU_CTX_FLAGS_MASK, CU_CTX_FLAGS_MASK)
SAME(HCU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK)
SAME(HCU_DEVICE_ATTRIBUTE_WARP_SIZE, CU_DEVICE_ATTRIBUTE_WARP_SIZE)
SAME(HCU_DEVICE_ATTRIBUTE_CLOCK_RATE, CU_DEVICE_ATTRIBUTE_CLOCK_RATE)
SAME(HCU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
SAME(HCU_DEVICE_ATTRIBUTE_INTEGRATED, CU_DEVICE_ATTRIBUTE_INTEGRATED)
SAME(HCU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY, CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY)
SAME(HCU_DEVICE_ATTRIBUTE_COMPUTE_MODE, CU_DEVICE_ATTRIBUTE_COMPUTE_MODE)
SAME(HCU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS, CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS)
SAME(HCU_DEVICE_ATTRIBUTE_ECC_ENABLED, CU_DEVICE_ATTRIBUTE_ECC_ENABLED)
SAME(HCU_DEVICE_ATTRIBUTE_PCI_BUS_ID, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID)
SAME(HCU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID)
SAME(HCU_DEVICE_ATTRIBUTE_TCC_DRIVER, CU_DEVICE_ATTRIBUTE_TCC_DRIVER)
SAME(HCU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH)
SAME(HCU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)
SAME(HCU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT, CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT)
SAME(HCU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING)
SAME(HCU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID)
SAME(HCU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)
SAME(HCU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)
SAME(HCU_DEVICE_ATTRIBUTE_MANAGED_MEMORY, CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY)
SAME(HCU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS, CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS)
SAME(HCU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS, CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS)
SAME(HCU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM,
     CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM)
SAME(HCU_DEVICE_ATTRIBUTE_HOST_REGISTER_SUPPORTED, CU_DEVICE_ATTRIBUTE_HOST_REGISTER_SUPPORTED)
SAME(HCU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED,
     CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED)
SAME(HCU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_SUPPORTED,
     CU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_SUPPORTED)
SAME(HCU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED, CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED)
SAME(HCU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED, CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED)

/* The special stream handles are pointer constants, which only GCC folds in a static
 * assertion. */
#ifndef __clang__
_Static_assert((unsigned long)HCU_STREAM_LEGACY == (unsigned long)CU_STREAM_LEGACY, "LEGACY");
_Static_assert((unsigned long)HCU_STREAM_PER_THREAD == (unsigned long)CU_STREAM_PER_THREAD,
               "PER_THREAD");
#endif

/* Every result in tests/fakecuda/cuda_results.h (the fake driver's names), by name and
 * value. */
#define SAME_RESULT(name, value, text) _Static_assert(CUDA_##name == (value), "CUDA_" #name);
FAKECUDA_RESULTS(SAME_RESULT)

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
CHECK_FN(hcu_get_error_string_fn, cuGetErrorString)
CHECK_FN(hcu_device_get_attribute_fn, cuDeviceGetAttribute)
CHECK_FN(hcu_device_get_pci_bus_id_fn, cuDeviceGetPCIBusId)
CHECK_FN(hcu_ctx_create_v4_fn, cuCtxCreate)
CHECK_FN(hcu_ctx_destroy_fn, cuCtxDestroy)
CHECK_FN(hcu_ctx_get_current_fn, cuCtxGetCurrent)
CHECK_FN(hcu_ctx_push_current_fn, cuCtxPushCurrent)
CHECK_FN(hcu_ctx_pop_current_fn, cuCtxPopCurrent)
CHECK_FN(hcu_ctx_get_device_fn, cuCtxGetDevice)
CHECK_FN(hcu_mem_host_register_fn, cuMemHostRegister)
CHECK_FN(hcu_mem_host_unregister_fn, cuMemHostUnregister)
CHECK_FN(hcu_memcpy_htod_fn, cuMemcpyHtoD)
CHECK_FN(hcu_memcpy_dtoh_async_fn, cuMemcpyDtoHAsync)
CHECK_FN(hcu_memset_d8_fn, cuMemsetD8)
CHECK_FN(hcu_stream_synchronize_fn, cuStreamSynchronize)
CHECK_FN(hcu_stream_query_fn, cuStreamQuery)
CHECK_FN(hcu_stream_wait_event_fn, cuStreamWaitEvent)
CHECK_FN(hcu_launch_host_func_fn, cuLaunchHostFunc)

/* cuCtxCreate_v2 is declared by cuda.h 13 only for the driver's own build; its type is
 * cudaTypedefs.h's PFN_cuCtxCreate_v3020. */
#if __has_include(<cudaTypedefs.h>)
#include <cudaTypedefs.h>
_Static_assert(__builtin_types_compatible_p(PFN_cuCtxCreate_v3020, hcu_ctx_create_fn),
               "cuCtxCreate_v2 type");
#endif

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
_Static_assert(sizeof(STR(cuCtxCreate)) == sizeof(HCU_SYM_CTX_CREATE_V4), "CtxCreate");
_Static_assert(sizeof(STR(cuCtxDestroy)) == sizeof(HCU_SYM_CTX_DESTROY), "CtxDestroy");
_Static_assert(sizeof(STR(cuCtxPushCurrent)) == sizeof(HCU_SYM_CTX_PUSH_CURRENT), "Push");
_Static_assert(sizeof(STR(cuCtxPopCurrent)) == sizeof(HCU_SYM_CTX_POP_CURRENT), "Pop");
_Static_assert(sizeof(STR(cuMemHostRegister)) == sizeof(HCU_SYM_MEM_HOST_REGISTER), "Register");
_Static_assert(sizeof(STR(cuMemcpyHtoD)) == sizeof(HCU_SYM_MEMCPY_HTOD), "HtoD");
_Static_assert(sizeof(STR(cuMemcpyDtoHAsync)) == sizeof(HCU_SYM_MEMCPY_DTOH_ASYNC), "DtoHAsync");
_Static_assert(sizeof(STR(cuMemsetD8)) == sizeof(HCU_SYM_MEMSET_D8), "MemsetD8");

/* Something the run-time can call so the object is not empty. */
int hoist_cuda_abi_names_match(void);
int hoist_cuda_abi_names_match(void)
{
	return strcmp(STR(cuMemAlloc), HCU_SYM_MEM_ALLOC) == 0 &&
	       strcmp(STR(cuMemcpyHtoDAsync), HCU_SYM_MEMCPY_HTOD_ASYNC) == 0 &&
	       strcmp(STR(cuMemcpyDtoH), HCU_SYM_MEMCPY_DTOH) == 0 &&
	       strcmp(STR(cuCtxCreate), HCU_SYM_CTX_CREATE_V4) == 0 &&
	       strcmp(STR(cuMemHostRegister), HCU_SYM_MEM_HOST_REGISTER) == 0 &&
	       strcmp(STR(cuMemsetD8), HCU_SYM_MEMSET_D8) == 0;
}

/* NVML, where the toolkit ships nvml.h: src/nvml_abi.h against it. */
#if __has_include(<nvml.h>)
#include <nvml.h>
#define HNVML_RETURN_TYPE nvmlReturn_t
#define HNVML_MEMORY_TYPE nvmlMemory_t
#define HNVML_PCI_INFO_TYPE nvmlPciInfo_t
#include "nvml_abi.h"
#include <stddef.h>

_Static_assert(__builtin_types_compatible_p(nvmlDevice_t, hnvml_device), "nvmlDevice_t type");
#define SAME_FIELD(ours, theirs, field)                                                            \
	_Static_assert(offsetof(ours, field) == offsetof(theirs, field) &&                         \
	                       sizeof(((ours *)0)->field) == sizeof(((theirs *)0)->field),         \
	               #theirs "." #field);
_Static_assert(sizeof(struct hnvml_memory) == sizeof(nvmlMemory_t), "nvmlMemory_t size");
SAME_FIELD(struct hnvml_memory, nvmlMemory_t, total)
SAME_FIELD(struct hnvml_memory, nvmlMemory_t, free)
SAME_FIELD(struct hnvml_memory, nvmlMemory_t, used)
_Static_assert(sizeof(struct hnvml_pci_info) == sizeof(nvmlPciInfo_t), "nvmlPciInfo_t size");
SAME_FIELD(struct hnvml_pci_info, nvmlPciInfo_t, busIdLegacy)
SAME_FIELD(struct hnvml_pci_info, nvmlPciInfo_t, domain)
SAME_FIELD(struct hnvml_pci_info, nvmlPciInfo_t, bus)
SAME_FIELD(struct hnvml_pci_info, nvmlPciInfo_t, device)
SAME_FIELD(struct hnvml_pci_info, nvmlPciInfo_t, pciDeviceId)
SAME_FIELD(struct hnvml_pci_info, nvmlPciInfo_t, pciSubSystemId)
SAME_FIELD(struct hnvml_pci_info, nvmlPciInfo_t, busId)

SAME(HNVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE, NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE)
SAME(HNVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE, NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE)
SAME(HNVML_DEVICE_NAME_BUFFER_SIZE, NVML_DEVICE_NAME_BUFFER_SIZE)
SAME(HNVML_DEVICE_NAME_V2_BUFFER_SIZE, NVML_DEVICE_NAME_V2_BUFFER_SIZE)
SAME(HNVML_SUCCESS, NVML_SUCCESS)
SAME(HNVML_ERROR_UNINITIALIZED, NVML_ERROR_UNINITIALIZED)
SAME(HNVML_ERROR_INVALID_ARGUMENT, NVML_ERROR_INVALID_ARGUMENT)
SAME(HNVML_ERROR_NOT_SUPPORTED, NVML_ERROR_NOT_SUPPORTED)
SAME(HNVML_ERROR_NO_PERMISSION, NVML_ERROR_NO_PERMISSION)
SAME(HNVML_ERROR_NOT_FOUND, NVML_ERROR_NOT_FOUND)
SAME(HNVML_ERROR_INSUFFICIENT_SIZE, NVML_ERROR_INSUFFICIENT_SIZE)
SAME(HNVML_ERROR_DRIVER_NOT_LOADED, NVML_ERROR_DRIVER_NOT_LOADED)
SAME(HNVML_ERROR_LIBRARY_NOT_FOUND, NVML_ERROR_LIBRARY_NOT_FOUND)
SAME(HNVML_ERROR_FUNCTION_NOT_FOUND, NVML_ERROR_FUNCTION_NOT_FOUND)
SAME(HNVML_ERROR_GPU_IS_LOST, NVML_ERROR_GPU_IS_LOST)
SAME(HNVML_ERROR_MEMORY, NVML_ERROR_MEMORY)
SAME(HNVML_ERROR_UNKNOWN, NVML_ERROR_UNKNOWN)

CHECK_FN(hnvml_init_fn, nvmlInit)
CHECK_FN(hnvml_shutdown_fn, nvmlShutdown)
CHECK_FN(hnvml_error_string_fn, nvmlErrorString)
CHECK_FN(hnvml_device_get_count_fn, nvmlDeviceGetCount)
CHECK_FN(hnvml_device_get_handle_by_index_fn, nvmlDeviceGetHandleByIndex)
CHECK_FN(hnvml_device_get_handle_by_pci_bus_id_fn, nvmlDeviceGetHandleByPciBusId)
CHECK_FN(hnvml_device_get_memory_info_fn, nvmlDeviceGetMemoryInfo)
CHECK_FN(hnvml_device_get_name_fn, nvmlDeviceGetName)
CHECK_FN(hnvml_device_get_pci_info_fn, nvmlDeviceGetPciInfo)

_Static_assert(sizeof(STR(nvmlInit)) == sizeof(HNVML_SYM_INIT), "nvmlInit name");
_Static_assert(sizeof(STR(nvmlDeviceGetCount)) == sizeof(HNVML_SYM_DEVICE_GET_COUNT), "Count");
_Static_assert(sizeof(STR(nvmlDeviceGetHandleByIndex)) ==
                       sizeof(HNVML_SYM_DEVICE_GET_HANDLE_BY_INDEX),
               "HandleByIndex name");
_Static_assert(sizeof(STR(nvmlDeviceGetHandleByPciBusId)) ==
                       sizeof(HNVML_SYM_DEVICE_GET_HANDLE_BY_PCI_BUS_ID),
               "HandleByPciBusId name");
_Static_assert(sizeof(STR(nvmlDeviceGetPciInfo)) == sizeof(HNVML_SYM_DEVICE_GET_PCI_INFO),
               "PciInfo name");

int hoist_nvml_abi_names_match(void);
int hoist_nvml_abi_names_match(void)
{
	return strcmp(STR(nvmlInit), HNVML_SYM_INIT) == 0 &&
	       strcmp(STR(nvmlDeviceGetPciInfo), HNVML_SYM_DEVICE_GET_PCI_INFO) == 0 &&
	       strcmp(STR(nvmlDeviceGetHandleByPciBusId),
	              HNVML_SYM_DEVICE_GET_HANDLE_BY_PCI_BUS_ID) == 0;
}
#endif
