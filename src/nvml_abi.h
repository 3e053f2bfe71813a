/*
 * nvml_abi.h - the few NVML types, constants and entry points hoist may use (device
 * names, memory and PCI bus ids without creating a CUDA context), declared from NVML's
 * documented ABI so hoist builds where NVML is absent. libnvidia-ml.so.1 is loaded at
 * run time and each entry point looked up by the versioned name nvml.h's macros map to
 * (nvmlInit -> nvmlInit_v2). tests/cuda_abi_check.c holds every declaration here
 * against nvml.h where the toolkit ships one; tests/fakecuda/fakenvml.c exports them.
 *
 * NVML numbers devices in its own order, which need not be CUDA's ordinal order: match
 * an NVML device to a CUDA device by PCI bus id, never by index.
 */
#ifndef HOIST_NVML_ABI_H
#define HOIST_NVML_ABI_H

/* nvmlReturn_t is an enum the size of int, returned by value as an int;
 * tests/cuda_abi_check.c defines HNVML_RETURN_TYPE as nvmlReturn_t. */
#ifndef HNVML_RETURN_TYPE
#define HNVML_RETURN_TYPE int
#endif
typedef HNVML_RETURN_TYPE hnvml_return;
typedef struct nvmlDevice_st *hnvml_device;

/* nvmlMemory_t: bytes. used counts reserved and allocated memory, free = total - used. */
struct hnvml_memory {
	unsigned long long total;
	unsigned long long free;
	unsigned long long used;
};

enum {
	HNVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE = 32,
	HNVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE = 16,
	HNVML_DEVICE_NAME_BUFFER_SIZE = 64,
	HNVML_DEVICE_NAME_V2_BUFFER_SIZE = 96,
};

/* nvmlPciInfo_t (filled by nvmlDeviceGetPciInfo_v3). busId is
 * "domain:bus:device.function" with an 8-digit domain ("00000000:18:00.0"); CUDA's
 * cuDeviceGetPCIBusId writes a 4-digit domain ("0000:18:00.0"), as busIdLegacy does:
 * compare the numbers, not the strings. */
struct hnvml_pci_info {
	char busIdLegacy[HNVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE];
	unsigned int domain;
	unsigned int bus;
	unsigned int device;
	unsigned int pciDeviceId; /* device id << 16 | vendor id */
	unsigned int pciSubSystemId;
	char busId[HNVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
};

enum {
	HNVML_SUCCESS = 0,
	HNVML_ERROR_UNINITIALIZED = 1,
	HNVML_ERROR_INVALID_ARGUMENT = 2,
	HNVML_ERROR_NOT_SUPPORTED = 3,
	HNVML_ERROR_NO_PERMISSION = 4,
	HNVML_ERROR_NOT_FOUND = 6,
	HNVML_ERROR_INSUFFICIENT_SIZE = 7,
	HNVML_ERROR_DRIVER_NOT_LOADED = 9,
	HNVML_ERROR_LIBRARY_NOT_FOUND = 12,
	HNVML_ERROR_FUNCTION_NOT_FOUND = 13,
	HNVML_ERROR_GPU_IS_LOST = 15,
	HNVML_ERROR_MEMORY = 20,
	HNVML_ERROR_UNKNOWN = 999,
};

/* The pointer types the entry points take. tests/cuda_abi_check.c defines these as
 * nvml.h's nvmlMemory_t and nvmlPciInfo_t, so that the function types below must match
 * nvml.h's prototypes, and holds the two structs' layouts against nvml.h's. */
#ifndef HNVML_MEMORY_TYPE
#define HNVML_MEMORY_TYPE struct hnvml_memory
#endif
#ifndef HNVML_PCI_INFO_TYPE
#define HNVML_PCI_INFO_TYPE struct hnvml_pci_info
#endif

typedef hnvml_return (*hnvml_init_fn)(void);
typedef hnvml_return (*hnvml_shutdown_fn)(void);
typedef const char *(*hnvml_error_string_fn)(hnvml_return result);
typedef hnvml_return (*hnvml_device_get_count_fn)(unsigned int *count);
typedef hnvml_return (*hnvml_device_get_handle_by_index_fn)(unsigned int index,
                                                            hnvml_device *device);
typedef hnvml_return (*hnvml_device_get_handle_by_pci_bus_id_fn)(const char *bus_id,
                                                                 hnvml_device *device);
typedef hnvml_return (*hnvml_device_get_memory_info_fn)(hnvml_device device,
                                                        HNVML_MEMORY_TYPE *memory);
typedef hnvml_return (*hnvml_device_get_name_fn)(hnvml_device device, char *name,
                                                 unsigned int length);
typedef hnvml_return (*hnvml_device_get_pci_info_fn)(hnvml_device device, HNVML_PCI_INFO_TYPE *pci);

/* Symbol names in libnvidia-ml.so.1 (the versioned ones where nvml.h maps a name). */
#define HNVML_SYM_INIT "nvmlInit_v2"
#define HNVML_SYM_SHUTDOWN "nvmlShutdown"
#define HNVML_SYM_ERROR_STRING "nvmlErrorString"
#define HNVML_SYM_DEVICE_GET_COUNT "nvmlDeviceGetCount_v2"
#define HNVML_SYM_DEVICE_GET_HANDLE_BY_INDEX "nvmlDeviceGetHandleByIndex_v2"
#define HNVML_SYM_DEVICE_GET_HANDLE_BY_PCI_BUS_ID "nvmlDeviceGetHandleByPciBusId_v2"
#define HNVML_SYM_DEVICE_GET_MEMORY_INFO "nvmlDeviceGetMemoryInfo"
#define HNVML_SYM_DEVICE_GET_NAME "nvmlDeviceGetName"
#define HNVML_SYM_DEVICE_GET_PCI_INFO "nvmlDeviceGetPciInfo_v3"

#endif /* HOIST_NVML_ABI_H */
