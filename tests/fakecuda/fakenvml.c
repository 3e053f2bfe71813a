/* fakenvml.c - a fake NVML (libnvidia-ml.so.1) that reports the fake CUDA driver's
 * devices: the same names, PCI bus ids and memory, with free memory that follows the
 * fake driver's allocations and contexts when both are in one process.
 *
 * It finds the fake driver beside itself (libcuda.so.1 in its own directory, or
 * FAKECUDA_LIBRARY), and opening that path again yields the copy already loaded, so
 * both libraries share one state. NVML's index order is not CUDA's ordinal order:
 * FAKECUDA_NVML_ORDER=reversed (the default) numbers them backwards, so that code
 * which pairs NVML and CUDA devices by index instead of by PCI bus id goes wrong.
 * Calls before nvmlInit_v2, shutdowns without an init and bad handles or arguments
 * are counted as violations of the fake driver. */
#include "fakecuda_internal.h"
#include "nvml_abi.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SAME_TYPE(fn, type)                                                                        \
	_Static_assert(__builtin_types_compatible_p(__typeof__(&fn), type), #fn " type")

/* Device handles are numbers, never addresses: NV_HANDLE_BASE + NVML index. */
#define NV_HANDLE_BASE 0x4e564d4c00000000ull
/* An H200 SXM's PCI device id (0x2335) and NVIDIA's vendor id (0x10de); the subsystem
 * id is made up. */
#define NV_PCI_DEVICE_ID 0x233510deu
#define NV_PCI_SUBSYSTEM_ID 0x000010deu

static struct {
	pthread_once_t once;
	char error[512];
	fakecuda__nvml_init_fn init;
	fakecuda__nvml_shutdown_fn shutdown;
	fakecuda__nvml_count_fn count;
	fakecuda__nvml_device_fn device;
	fakecuda__nvml_find_fn find;
	fakecuda__nvml_violation_fn violation;
} nv = {PTHREAD_ONCE_INIT, "", NULL, NULL, NULL, NULL, NULL, NULL};

static void find_fake(void)
{
	char path[4096];
	const char *env = getenv("FAKECUDA_LIBRARY");
	Dl_info info;
	if (env && *env) {
		snprintf(path, sizeof path, "%s", env);
	} else if (dladdr((void *)&find_fake, &info) && info.dli_fname) {
		const char *slash = strrchr(info.dli_fname, '/');
		int dir = slash ? (int)(slash - info.dli_fname) : 1;
		snprintf(path, sizeof path, "%.*s/libcuda.so.1", dir, slash ? info.dli_fname : ".");
	} else {
		snprintf(nv.error, sizeof nv.error, "cannot tell where libnvidia-ml.so.1 lies");
		return;
	}
	/* Never closed: the fake driver's threads and state outlive any one call. */
	void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		const char *e = dlerror();
		snprintf(nv.error, sizeof nv.error, "%.500s", e ? e : path);
		return;
	}
	struct {
		const char *name;
		void **slot;
	} syms[] = {
	        {"fakecuda__nvml_init", (void **)&nv.init},
	        {"fakecuda__nvml_shutdown", (void **)&nv.shutdown},
	        {"fakecuda__nvml_count", (void **)&nv.count},
	        {"fakecuda__nvml_device", (void **)&nv.device},
	        {"fakecuda__nvml_find", (void **)&nv.find},
	        {"fakecuda__nvml_violation", (void **)&nv.violation},
	};
	for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
		*syms[i].slot = dlsym(lib, syms[i].name);
		if (!*syms[i].slot) {
			snprintf(nv.error, sizeof nv.error, "%.400s: no %s (not the fake driver)",
			         path, syms[i].name);
			nv.init = NULL;
			return;
		}
	}
}

static bool loaded(void)
{
	pthread_once(&nv.once, find_fake);
	return nv.init != NULL;
}

static void violation(const char *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void violation(const char *call, const char *fmt, ...)
{
	char msg[FAKECUDA_MESSAGE_SIZE];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (loaded())
		nv.violation(call, msg);
}

/* The NVML index behind handle h; after counting the violation, -2 before nvmlInit_v2
 * and -1 for a bad handle. */
static int index_of(const char *call, hnvml_device h)
{
	uint64_t v = (uint64_t)(uintptr_t)h;
	int n = loaded() ? nv.count() : -1;
	if (n < 0) {
		violation(call, "called before nvmlInit_v2 -> NVML_ERROR_UNINITIALIZED");
		return -2;
	}
	if (v < NV_HANDLE_BASE || v - NV_HANDLE_BASE >= (uint64_t)n) {
		violation(call,
		          "%p is not a device handle of this NVML -> "
		          "NVML_ERROR_INVALID_ARGUMENT",
		          (void *)h);
		return -1;
	}
	return (int)(v - NV_HANDLE_BASE);
}

static hnvml_return handle_error(int i)
{
	return i == -2 ? HNVML_ERROR_UNINITIALIZED : HNVML_ERROR_INVALID_ARGUMENT;
}

hnvml_return nvmlInit_v2(void)
{
	if (!loaded()) {
		fprintf(stderr, "fakenvml: no fake CUDA driver to report: %s\n", nv.error);
		return HNVML_ERROR_DRIVER_NOT_LOADED;
	}
	nv.init();
	return HNVML_SUCCESS;
}

hnvml_return nvmlShutdown(void)
{
	if (!loaded() || nv.shutdown() != 0) {
		violation("nvmlShutdown", "more shutdowns than nvmlInit_v2 calls -> "
		                          "NVML_ERROR_UNINITIALIZED");
		return HNVML_ERROR_UNINITIALIZED;
	}
	return HNVML_SUCCESS;
}

const char *nvmlErrorString(hnvml_return result)
{
	switch ((int)result) {
	case HNVML_SUCCESS: return "Success";
	case HNVML_ERROR_UNINITIALIZED: return "Uninitialized";
	case HNVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
	case HNVML_ERROR_NOT_SUPPORTED: return "Not Supported";
	case HNVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
	case HNVML_ERROR_NOT_FOUND: return "Not Found";
	case HNVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
	case HNVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
	case HNVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
	case HNVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
	case HNVML_ERROR_GPU_IS_LOST: return "GPU is lost";
	case HNVML_ERROR_MEMORY: return "Insufficient Memory";
	case HNVML_ERROR_UNKNOWN: return "Unknown Error";
	default: return "Unknown Error";
	}
}

hnvml_return nvmlDeviceGetCount_v2(unsigned int *count)
{
	static const char call[] = "nvmlDeviceGetCount_v2";
	int n = loaded() ? nv.count() : -1;
	if (n < 0) {
		violation(call, "called before nvmlInit_v2 -> NVML_ERROR_UNINITIALIZED");
		return HNVML_ERROR_UNINITIALIZED;
	}
	if (!count) {
		violation(call, "count is NULL -> NVML_ERROR_INVALID_ARGUMENT");
		return HNVML_ERROR_INVALID_ARGUMENT;
	}
	*count = (unsigned)n;
	return HNVML_SUCCESS;
}

hnvml_return nvmlDeviceGetHandleByIndex_v2(unsigned int index, hnvml_device *device)
{
	static const char call[] = "nvmlDeviceGetHandleByIndex_v2";
	int n = loaded() ? nv.count() : -1;
	if (n < 0) {
		violation(call, "called before nvmlInit_v2 -> NVML_ERROR_UNINITIALIZED");
		return HNVML_ERROR_UNINITIALIZED;
	}
	if (!device || index >= (unsigned)n) {
		violation(call, "index %u of %d devices, device %p -> NVML_ERROR_INVALID_ARGUMENT",
		          index, n, (void *)device);
		return HNVML_ERROR_INVALID_ARGUMENT;
	}
	*device = (hnvml_device)(uintptr_t)(NV_HANDLE_BASE + index);
	return HNVML_SUCCESS;
}

hnvml_return nvmlDeviceGetHandleByPciBusId_v2(const char *bus_id, hnvml_device *device)
{
	static const char call[] = "nvmlDeviceGetHandleByPciBusId_v2";
	int n = loaded() ? nv.count() : -1;
	if (n < 0) {
		violation(call, "called before nvmlInit_v2 -> NVML_ERROR_UNINITIALIZED");
		return HNVML_ERROR_UNINITIALIZED;
	}
	int i = device ? nv.find(bus_id) : -2;
	if (i == -2) {
		violation(call,
		          "bus id \"%s\" does not parse, or device %p -> "
		          "NVML_ERROR_INVALID_ARGUMENT",
		          bus_id ? bus_id : "(null)", (void *)device);
		return HNVML_ERROR_INVALID_ARGUMENT;
	}
	if (i < 0)
		return HNVML_ERROR_NOT_FOUND;
	*device = (hnvml_device)(uintptr_t)(NV_HANDLE_BASE + (unsigned)i);
	return HNVML_SUCCESS;
}

hnvml_return nvmlDeviceGetMemoryInfo(hnvml_device device, struct hnvml_memory *memory)
{
	static const char call[] = "nvmlDeviceGetMemoryInfo";
	int i = index_of(call, device);
	struct fakecuda__nvml_device d;
	if (i < 0)
		return handle_error(i);
	if (!memory || nv.device(i, &d) != 0) {
		violation(call, "memory is NULL -> NVML_ERROR_INVALID_ARGUMENT");
		return HNVML_ERROR_INVALID_ARGUMENT;
	}
	memory->total = d.total;
	memory->used = d.used;
	memory->free = d.total - d.used;
	return HNVML_SUCCESS;
}

hnvml_return nvmlDeviceGetName(hnvml_device device, char *name, unsigned int length)
{
	static const char call[] = "nvmlDeviceGetName";
	int i = index_of(call, device);
	struct fakecuda__nvml_device d;
	if (i < 0)
		return handle_error(i);
	if (!name || nv.device(i, &d) != 0) {
		violation(call, "name is NULL -> NVML_ERROR_INVALID_ARGUMENT");
		return HNVML_ERROR_INVALID_ARGUMENT;
	}
	if (strlen(d.name) + 1 > length)
		return HNVML_ERROR_INSUFFICIENT_SIZE;
	memcpy(name, d.name, strlen(d.name) + 1);
	return HNVML_SUCCESS;
}

hnvml_return nvmlDeviceGetPciInfo_v3(hnvml_device device, struct hnvml_pci_info *pci)
{
	static const char call[] = "nvmlDeviceGetPciInfo_v3";
	int i = index_of(call, device);
	struct fakecuda__nvml_device d;
	if (i < 0)
		return handle_error(i);
	if (!pci || nv.device(i, &d) != 0) {
		violation(call, "pci is NULL -> NVML_ERROR_INVALID_ARGUMENT");
		return HNVML_ERROR_INVALID_ARGUMENT;
	}
	memset(pci, 0, sizeof *pci);
	/* NVML's form: an 8-digit domain in busId, 4 digits in busIdLegacy (CUDA's). */
	snprintf(pci->busId, sizeof pci->busId, "%08X:%02X:%02X.0", d.domain, d.bus, d.slot);
	snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04X:%02X:%02X.0", d.domain & 0xffff,
	         d.bus, d.slot);
	pci->domain = d.domain;
	pci->bus = d.bus;
	pci->device = d.slot;
	pci->pciDeviceId = NV_PCI_DEVICE_ID;
	pci->pciSubSystemId = NV_PCI_SUBSYSTEM_ID;
	return HNVML_SUCCESS;
}

SAME_TYPE(nvmlInit_v2, hnvml_init_fn);
SAME_TYPE(nvmlShutdown, hnvml_shutdown_fn);
SAME_TYPE(nvmlErrorString, hnvml_error_string_fn);
SAME_TYPE(nvmlDeviceGetCount_v2, hnvml_device_get_count_fn);
SAME_TYPE(nvmlDeviceGetHandleByIndex_v2, hnvml_device_get_handle_by_index_fn);
SAME_TYPE(nvmlDeviceGetHandleByPciBusId_v2, hnvml_device_get_handle_by_pci_bus_id_fn);
SAME_TYPE(nvmlDeviceGetMemoryInfo, hnvml_device_get_memory_info_fn);
SAME_TYPE(nvmlDeviceGetName, hnvml_device_get_name_fn);
SAME_TYPE(nvmlDeviceGetPciInfo_v3, hnvml_device_get_pci_info_fn);
