/* cuda_results.h - every CUresult of cuda.h (CUDA 13.0), as X(NAME, value, text): the
 * name without its CUDA_ prefix, the value, and a one-line description in our words.
 * The fake driver's cuGetErrorName/cuGetErrorString are built from this list, and
 * tests/cuda_abi_check.c holds every name and value against the real cuda.h. A value
 * that a later cuda.h adds goes at its place in value order. */
#ifndef FAKECUDA_CUDA_RESULTS_H
#define FAKECUDA_CUDA_RESULTS_H

#define FAKECUDA_RESULTS(X)                                                                        \
	X(SUCCESS, 0, "no error")                                                                  \
	X(ERROR_INVALID_VALUE, 1, "invalid argument")                                              \
	X(ERROR_OUT_OF_MEMORY, 2, "out of memory")                                                 \
	X(ERROR_NOT_INITIALIZED, 3, "initialization error (cuInit has not succeeded)")             \
	X(ERROR_DEINITIALIZED, 4, "driver shutting down")                                          \
	X(ERROR_PROFILER_DISABLED, 5, "profiler disabled while using an external profiling tool")  \
	X(ERROR_PROFILER_NOT_INITIALIZED, 6, "profiler not initialized")                           \
	X(ERROR_PROFILER_ALREADY_STARTED, 7, "profiler already started")                           \
	X(ERROR_PROFILER_ALREADY_STOPPED, 8, "profiler already stopped")                           \
	X(ERROR_STUB_LIBRARY, 34, "CUDA driver is a stub library")                                 \
	X(ERROR_CALL_REQUIRES_NEWER_DRIVER, 36, "the call requires a newer driver")                \
	X(ERROR_DEVICE_UNAVAILABLE, 46, "CUDA-capable device(s) busy or unavailable")              \
	X(ERROR_NO_DEVICE, 100, "no CUDA-capable device is detected")                              \
	X(ERROR_INVALID_DEVICE, 101, "invalid device ordinal")                                     \
	X(ERROR_DEVICE_NOT_LICENSED, 102, "device does not have a valid license")                  \
	X(ERROR_INVALID_IMAGE, 200, "device kernel image is invalid")                              \
	X(ERROR_INVALID_CONTEXT, 201, "invalid device context")                                    \
	X(ERROR_CONTEXT_ALREADY_CURRENT, 202, "context already current")                           \
	X(ERROR_MAP_FAILED, 205, "mapping of buffer object failed")                                \
	X(ERROR_UNMAP_FAILED, 206, "unmapping of buffer object failed")                            \
	X(ERROR_ARRAY_IS_MAPPED, 207, "array is mapped")                                           \
	X(ERROR_ALREADY_MAPPED, 208, "resource already mapped")                                    \
	X(ERROR_NO_BINARY_FOR_GPU, 209, "no kernel image is available for the device")             \
	X(ERROR_ALREADY_ACQUIRED, 210, "resource already acquired")                                \
	X(ERROR_NOT_MAPPED, 211, "resource not mapped")                                            \
	X(ERROR_NOT_MAPPED_AS_ARRAY, 212, "resource not mapped as array")                          \
	X(ERROR_NOT_MAPPED_AS_POINTER, 213, "resource not mapped as pointer")                      \
	X(ERROR_ECC_UNCORRECTABLE, 214, "uncorrectable ECC error encountered")                     \
	X(ERROR_UNSUPPORTED_LIMIT, 215, "limit is not supported on this architecture")             \
	X(ERROR_CONTEXT_ALREADY_IN_USE, 216, "exclusive-thread device already in use")             \
	X(ERROR_PEER_ACCESS_UNSUPPORTED, 217, "peer access is not supported between the devices")  \
	X(ERROR_INVALID_PTX, 218, "a PTX JIT compilation failed")                                  \
	X(ERROR_INVALID_GRAPHICS_CONTEXT, 219, "invalid OpenGL or DirectX context")                \
	X(ERROR_NVLINK_UNCORRECTABLE, 220, "uncorrectable NVLink error detected")                  \
	X(ERROR_JIT_COMPILER_NOT_FOUND, 221, "PTX JIT compiler library not found")                 \
	X(ERROR_UNSUPPORTED_PTX_VERSION, 222, "the provided PTX uses an unsupported version")      \
	X(ERROR_JIT_COMPILATION_DISABLED, 223, "PTX JIT compilation is disabled")                  \
	X(ERROR_UNSUPPORTED_EXEC_AFFINITY, 224, "the execution affinity is not supported")         \
	X(ERROR_UNSUPPORTED_DEVSIDE_SYNC, 225, "device-side synchronization is not supported")     \
	X(ERROR_CONTAINED, 226, "an exception was contained on the device")                        \
	X(ERROR_INVALID_SOURCE, 300, "device kernel source is invalid")                            \
	X(ERROR_FILE_NOT_FOUND, 301, "file not found")                                             \
	X(ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND, 302, "shared object symbol not found")             \
	X(ERROR_SHARED_OBJECT_INIT_FAILED, 303, "shared object initialization failed")             \
	X(ERROR_OPERATING_SYSTEM, 304, "an operating system call failed")                          \
	X(ERROR_INVALID_HANDLE, 400, "invalid resource handle")                                    \
	X(ERROR_ILLEGAL_STATE, 401, "the resource is not in a valid state for the operation")      \
	X(ERROR_LOSSY_QUERY, 402, "the query cannot be answered without loss")                     \
	X(ERROR_NOT_FOUND, 500, "named symbol not found")                                          \
	X(ERROR_NOT_READY, 600, "device not ready (work is still in progress)")                    \
	X(ERROR_ILLEGAL_ADDRESS, 700, "an illegal memory access was encountered")                  \
	X(ERROR_LAUNCH_OUT_OF_RESOURCES, 701, "too many resources requested for launch")           \
	X(ERROR_LAUNCH_TIMEOUT, 702, "the launch timed out and was terminated")                    \
	X(ERROR_LAUNCH_INCOMPATIBLE_TEXTURING, 703, "launch uses incompatible texturing mode")     \
	X(ERROR_PEER_ACCESS_ALREADY_ENABLED, 704, "peer access is already enabled")                \
	X(ERROR_PEER_ACCESS_NOT_ENABLED, 705, "peer access has not been enabled")                  \
	X(ERROR_PRIMARY_CONTEXT_ACTIVE, 708, "the primary context is already active")              \
	X(ERROR_CONTEXT_IS_DESTROYED, 709, "context is destroyed")                                 \
	X(ERROR_ASSERT, 710, "device-side assert triggered")                                       \
	X(ERROR_TOO_MANY_PEERS, 711, "peer mapping resources exhausted")                           \
	X(ERROR_HOST_MEMORY_ALREADY_REGISTERED, 712, "part or all of the range is registered")     \
	X(ERROR_HOST_MEMORY_NOT_REGISTERED, 713, "pointer does not correspond to a registration")  \
	X(ERROR_HARDWARE_STACK_ERROR, 714, "hardware stack error")                                 \
	X(ERROR_ILLEGAL_INSTRUCTION, 715, "an illegal instruction was encountered")                \
	X(ERROR_MISALIGNED_ADDRESS, 716, "misaligned address")                                     \
	X(ERROR_INVALID_ADDRESS_SPACE, 717, "operation not supported on this address space")       \
	X(ERROR_INVALID_PC, 718, "invalid program counter")                                        \
	X(ERROR_LAUNCH_FAILED, 719, "unspecified launch failure")                                  \
	X(ERROR_COOPERATIVE_LAUNCH_TOO_LARGE, 720, "too many blocks in cooperative launch")        \
	X(ERROR_TENSOR_MEMORY_LEAK, 721, "tensor memory not freed before the kernel exited")       \
	X(ERROR_NOT_PERMITTED, 800, "operation not permitted")                                     \
	X(ERROR_NOT_SUPPORTED, 801, "operation not supported")                                     \
	X(ERROR_SYSTEM_NOT_READY, 802, "system not yet initialized")                               \
	X(ERROR_SYSTEM_DRIVER_MISMATCH, 803, "driver and kernel module versions mismatch")         \
	X(ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE, 804, "forward compatibility not supported")        \
	X(ERROR_MPS_CONNECTION_FAILED, 805, "MPS client failed to connect to the MPS server")      \
	X(ERROR_MPS_RPC_FAILURE, 806, "the remote procedure call to the MPS server failed")        \
	X(ERROR_MPS_SERVER_NOT_READY, 807, "the MPS server is not ready")                          \
	X(ERROR_MPS_MAX_CLIENTS_REACHED, 808, "the MPS server has no room for another client")     \
	X(ERROR_MPS_MAX_CONNECTIONS_REACHED, 809, "the MPS server has no room for a connection")   \
	X(ERROR_MPS_CLIENT_TERMINATED, 810, "the MPS client was terminated by the server")         \
	X(ERROR_CDP_NOT_SUPPORTED, 811, "dynamic parallelism is not supported here")               \
	X(ERROR_CDP_VERSION_MISMATCH, 812, "dynamic parallelism versions do not match")            \
	X(ERROR_STREAM_CAPTURE_UNSUPPORTED, 900, "operation not permitted while capturing")        \
	X(ERROR_STREAM_CAPTURE_INVALIDATED, 901, "the stream capture was invalidated")             \
	X(ERROR_STREAM_CAPTURE_MERGE, 902, "the operation would merge two captures")               \
	X(ERROR_STREAM_CAPTURE_UNMATCHED, 903, "the capture was not begun in this stream")         \
	X(ERROR_STREAM_CAPTURE_UNJOINED, 904, "the capture forked and did not join")               \
	X(ERROR_STREAM_CAPTURE_ISOLATION, 905, "the dependency would cross a capture boundary")    \
	X(ERROR_STREAM_CAPTURE_IMPLICIT, 906, "implicit dependency on a capturing stream")         \
	X(ERROR_CAPTURED_EVENT, 907, "operation not permitted on an event from a capture")         \
	X(ERROR_STREAM_CAPTURE_WRONG_THREAD, 908, "capture was begun by another thread")           \
	X(ERROR_TIMEOUT, 909, "the wait timed out")                                                \
	X(ERROR_GRAPH_EXEC_UPDATE_FAILURE, 910, "the graph update was not performed")              \
	X(ERROR_EXTERNAL_DEVICE, 911, "an asynchronous error occurred in an external device")      \
	X(ERROR_INVALID_CLUSTER_SIZE, 912, "invalid cluster size")                                 \
	X(ERROR_FUNCTION_NOT_LOADED, 913, "the function is not loaded")                            \
	X(ERROR_INVALID_RESOURCE_TYPE, 914, "invalid resource type")                               \
	X(ERROR_INVALID_RESOURCE_CONFIGURATION, 915, "invalid resource configuration")             \
	X(ERROR_KEY_ROTATION, 916, "an error in key rotation")                                     \
	X(ERROR_UNKNOWN, 999, "unknown error")

#endif /* FAKECUDA_CUDA_RESULTS_H */
