/*
 * hoist.h - load large model checkpoints from storage straight into device memory.
 *
 * hoist reads sharded safetensors checkpoints (as written by Hugging Face
 * `save_pretrained`), plans where every tensor goes (GPUs, host memory, or left on
 * disk), and streams the bytes there through a bounded ring of pinned staging
 * buffers, reporting where the time went.
 *
 * The path of a load:
 *
 *     hoist_checkpoint_open()   headers only: names, dtypes, shapes, byte ranges
 *     hoist_plan_create()       tensor -> device and arena offset, from metadata alone
 *     hoist_model_load()        one arena per device, bytes streamed by file range
 *     hoist_model_tensor()      borrowed views: device, address, dtype, shape
 *     hoist_model_report()      seconds per phase, the link that set the pace
 *
 * Conventions:
 *  - Every call that can fail returns enum hoist_status; results come through
 *    out-parameters. On failure, hoist_errmsg() says what went wrong, naming the
 *    file, the tensor and the byte offset where they are known.
 *  - Whoever opens, closes. Destructors accept NULL.
 *  - Indexed items share one shape: hoist_<object>_<item>_count(object) says how many,
 *    and hoist_<object>_<item>(object, i) returns a pointer to the i-th, borrowed from
 *    the object (valid until it is closed or freed), or NULL when the object is NULL
 *    or i is out of range. Structs so returned may grow fields at their end.
 *  - A handle is used by one thread at a time; different handles may be used from
 *    different threads at once. Callbacks (progress, log) run on the calling thread,
 *    never on one of hoist's worker threads.
 *  - struct hoist_options: zero means default for every field; pass NULL for all
 *    defaults. Fields are only ever appended.
 *  - The library never writes to stdout or stderr: notices reach the log callback.
 *  - Unstable calls for tests and demos (the simulated accelerator, synthetic
 *    checkpoints, fault injection) are in hoist_testing.h, not here.
 *
 * The CUDA driver is loaded at run time, on first use: the library named by the
 * environment variable HOIST_CUDA_LIBRARY (for tests, which point it at the fake
 * driver in tests/fakecuda, and for unusual installs), else "libcuda.so.1" as the
 * dynamic linker finds it; NVML (free GPU memory, read without creating a CUDA
 * context) likewise from HOIST_NVML_LIBRARY, else "libnvidia-ml.so.1". hoist uses each
 * GPU's primary context (the one the CUDA runtime and PyTorch share), holds a
 * reference on it only while a model, a warm-up or a pinned arena needs it, and never
 * changes the calling thread's current context.
 */
#ifndef HOIST_H
#define HOIST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HOIST_VERSION_MAJOR 0
#define HOIST_VERSION_MINOR 2
#define HOIST_VERSION_PATCH 0
#define HOIST_VERSION_STRING "0.2.0"

/* The library's version string, which may differ from the header it was built with. */
const char *hoist_version(void);

/* ------------------------------------------------------------------------------ */
/* Status codes: coarse on purpose; the detail is in hoist_errmsg(). Append only.  */

enum hoist_status {
	HOIST_OK = 0,
	HOIST_ERR_INVALID = 1,   /* an argument or option is wrong */
	HOIST_ERR_NOMEM = 2,     /* host memory could not be allocated */
	HOIST_ERR_IO = 3,        /* a file could not be opened, read or written */
	HOIST_ERR_FORMAT = 4,    /* a file breaks the safetensors / index format */
	HOIST_ERR_NO_DEVICE = 5, /* the device asked for does not exist or no driver loads */
	HOIST_ERR_DEVICE = 6, /* the device or its driver failed (message names the driver error) */
	HOIST_ERR_CANCELLED = 7, /* the progress callback asked to stop */
	HOIST_ERR_NO_SPACE = 8,  /* the tensors do not fit the devices' budgets or memory */
};

/* A short constant name for a status ("HOIST_ERR_FORMAT"); never NULL. */
const char *hoist_status_name(enum hoist_status status);

/* The message of the last failed call on this thread; "" if none. Valid until the
 * next hoist call on this thread. */
const char *hoist_errmsg(void);

/* ------------------------------------------------------------------------------ */
/* Data types of the safetensors format. 0 means "none / keep" in options.          */

enum hoist_dtype {
	HOIST_DTYPE_NONE = 0,
	HOIST_BOOL,
	HOIST_U8,
	HOIST_I8,
	HOIST_F8_E5M2,
	HOIST_F8_E4M3,
	HOIST_F8_E8M0,
	HOIST_F4,      /* 4 bits: two elements per byte */
	HOIST_F6_E2M3, /* 6 bits: four elements per three bytes */
	HOIST_F6_E3M2,
	HOIST_I16,
	HOIST_U16,
	HOIST_F16,
	HOIST_BF16,
	HOIST_I32,
	HOIST_U32,
	HOIST_F32,
	HOIST_C64,
	HOIST_F64,
	HOIST_I64,
	HOIST_U64,
	HOIST_DTYPE_COUNT /* not a dtype: one past the last */
};

/* The format's spelling ("BF16"), or NULL for a value that is not a dtype. */
const char *hoist_dtype_name(enum hoist_dtype dtype);
/* Bits per element (1..128), or 0 for a value that is not a dtype. */
unsigned hoist_dtype_bits(enum hoist_dtype dtype);
/* Parses the format's spelling, case-sensitively as the format requires.
 * Errors: HOIST_ERR_INVALID for an unknown name. */
enum hoist_status hoist_dtype_parse(const char *name, enum hoist_dtype *out);
/* Parses a dtype as people write it: the format's spellings in any case ("bf16" too),
 * or torch's and numpy's names with or without "torch." ("bfloat16", "float16",
 * "half", "float32", "float", "int64", "float8_e4m3fn", ...).
 * Errors: HOIST_ERR_INVALID naming the text. */
enum hoist_status hoist_dtype_from_name(const char *name, enum hoist_dtype *out);
/* The dtype a tensor stored as `stored` has once loaded with options.dtype `target`:
 * loads convert only between F16, BF16 and F32 (round to nearest even); any other
 * tensor, and every tensor when target is HOIST_DTYPE_NONE, keeps its dtype. */
enum hoist_dtype hoist_dtype_loaded(enum hoist_dtype stored, enum hoist_dtype target);

/* ------------------------------------------------------------------------------ */
/* Devices and byte counts.                                                        */

enum hoist_device_kind {
	HOIST_DEVICE_CPU = 0,  /* host memory */
	HOIST_DEVICE_CUDA = 1, /* an NVIDIA GPU through the CUDA driver */
	HOIST_DEVICE_SIM = 2,  /* the simulated accelerator (tests; never a fallback) */
	HOIST_DEVICE_DISK = 3, /* left in its file; read or fetched on demand */
};

/* The most GPUs of one kind that a plan or a load uses. */
#define HOIST_MAX_DEVICES 64

/* Every arena-held tensor's address is a multiple of this (CUDA's allocation
 * granularity; DLPack consumers expect at least 64). */
#define HOIST_ARENA_ALIGN 256u

struct hoist_device {
	enum hoist_device_kind kind;
	int index; /* GPU ordinal for cuda and sim; 0 for cpu and disk */
};

/* Parses "cpu", "disk", "cuda:N", "sim:N". A bare "cuda" or "sim" gives index -1,
 * meaning every device of that kind. Errors: HOIST_ERR_INVALID. */
enum hoist_status hoist_device_parse(const char *text, struct hoist_device *out);
/* Writes "cuda:0", "cpu", ... into buf (always NUL-terminated); returns buf. */
char *hoist_device_format(struct hoist_device device, char *buf, size_t size);

struct hoist_options; /* below */

struct hoist_device_info {
	struct hoist_device device;
	uint64_t total_bytes;
	uint64_t free_bytes; /* now; cpu: MemAvailable */
	char name[96];       /* "NVIDIA H200", "sim", "host" */
};

/* Lists the devices of `kind` present now into out[0 .. cap), *count of them (cpu:
 * one; sim: as opt->sim says; cuda: through the driver, without creating a CUDA
 * context: free memory comes from NVML, or, where NVML is absent, from the context of
 * the GPUs opt->device targets). opt may be NULL.
 * Errors: HOIST_ERR_NO_DEVICE when the kind's driver does not load or finds no
 * device (the message says which), HOIST_ERR_DEVICE when the CUDA driver loads but
 * cannot use its GPUs (the message names cuInit's error, e.g.
 * CUDA_ERROR_SYSTEM_NOT_READY), HOIST_ERR_INVALID for disk. */
enum hoist_status hoist_device_list(enum hoist_device_kind kind, const struct hoist_options *opt,
                                    struct hoist_device_info *out, size_t cap, size_t *count);

/* Parses a byte count: "20GiB", "1.5GB", "4096", "512MiB" (B, KB/MB/GB/TB decimal,
 * KiB/MiB/GiB/TiB binary, case-insensitive). Errors: HOIST_ERR_INVALID naming the text. */
enum hoist_status hoist_bytes_parse(const char *text, uint64_t *out);
/* Formats a byte count as people read it: "512 B", "16.58 GB" (decimal units, two
 * decimals) into buf (always NUL-terminated); returns buf. */
char *hoist_bytes_format(uint64_t bytes, char *buf, size_t size);

/* ------------------------------------------------------------------------------ */
/* Options: zero means default for every field.                                    */

enum hoist_host_memory {
	HOIST_HOST_DEFAULT = 0,  /* pageable for cpu targets */
	HOIST_HOST_PAGEABLE = 1, /* malloc'd arena */
	HOIST_HOST_PINNED = 2,   /* page-locked arena (through the CUDA driver when present) */
	HOIST_HOST_MMAP = 3,     /* zero-copy read-only views of the mapped files; no conversion */
};

/* Whether the planner may leave tensors in their files (device "disk"). */
enum hoist_disk {
	HOIST_DISK_ALLOWED = 0,   /* when GPUs and cpu are full, and where a map says so */
	HOIST_DISK_FORBIDDEN = 1, /* never: a plan that would need it is HOIST_ERR_NO_SPACE */
};

/* The phases of a load, in order. */
enum hoist_phase {
	HOIST_PHASE_OPEN,     /* hoist_checkpoint_open: the headers */
	HOIST_PHASE_PLAN,     /* hoist_plan_create */
	HOIST_PHASE_ALLOCATE, /* arenas and the staging ring */
	HOIST_PHASE_STREAM,   /* the bytes, from the files to the devices */
	HOIST_PHASE_FINALIZE, /* waiting for the devices, tensor views */
	HOIST_PHASE_COUNT     /* not a phase */
};

/* "open", "plan", "allocate", "stream", "finalize"; NULL for a value that is none. */
const char *hoist_phase_name(enum hoist_phase phase);

/* Progress, reported on the calling thread at least every 100 ms during long work. */
struct hoist_progress {
	enum hoist_phase phase;
	uint64_t bytes_done;  /* bytes landed on their devices so far */
	uint64_t bytes_total; /* bytes to move in this load */
	double seconds;       /* since the phase began */
};

/* Return non-zero to cancel: the call then frees everything it made and returns
 * HOIST_ERR_CANCELLED. */
typedef int (*hoist_progress_fn)(const struct hoist_progress *progress, void *arg);

enum hoist_log_level {
	HOIST_LOG_WARNING = 0, /* something is wrong but the call goes on */
	HOIST_LOG_NOTICE = 1,  /* worth telling the user (e.g. "no GPU: planned for cpu") */
	HOIST_LOG_INFO = 2,    /* what a verbose front end shows: each step as it happens */
};

/* A message for the user, without a trailing newline, valid during the call. */
typedef void (*hoist_log_fn)(enum hoist_log_level level, const char *message, void *arg);

/* The simulated accelerator's settings (hoist_testing.h). */
struct hoist_sim_options;

struct hoist_model;        /* a loaded model (below) */
struct hoist_plan_request; /* the caller's units, order and ties (below) */

/* Tensor `tensor` (checkpoint numbering) has landed: its bytes are on its device and
 * its view, hoist_model_tensor(model, tensor), may be used and exported (a disk-placed
 * tensor is reported too: it is ready to be read). Called once per tensor during
 * hoist_model_load, on the calling thread, in landing order, which need not be file
 * order. model is the one the load is making: the callback must not free it, and may
 * take references (hoist_model_retain, DLPack exports), which keep the memory of what
 * it was handed alive even if the load then fails. Return non-zero to cancel the
 * load (HOIST_ERR_CANCELLED). */
typedef int (*hoist_landed_fn)(struct hoist_model *model, size_t tensor, void *arg);

/* Room kept free for executing offloaded layers (read by hoist_plan_create). */
enum hoist_offload_room {
	HOIST_ROOM_NONE = 0, /* none: every byte of a budget may hold tensors */
	/* As accelerate's infer_auto_device_map: the first GPU and cpu each keep room for
	 * the largest unit, where offloaded layers are brought to run (accelerate's
	 * dispatch_model runs cpu and disk layers there). */
	HOIST_ROOM_LARGEST_UNIT = 1,
};

/* Where a load to a GPU takes a chunk's bytes from (options.source).
 *  - pread: reader threads pread the files into a ring of pinned staging buffers
 *    (CPU copies out of the page cache), the GPU copies from there.
 *  - register: each chunk's window of the memory-mapped file is registered with the
 *    driver (cuMemHostRegister, read-only) and the GPU copies straight from the page
 *    cache (registering faults in pages that are not resident); the window is
 *    unregistered, then unmapped, once its copy has landed. Every reader registers,
 *    two windows at a time each; a chunk that finds no window free is pread.
 *    HOIST_ERR_INVALID where a target GPU lacks read-only registration.
 *  - auto: register windows whose pages are all resident now (mincore), on two of
 *    the readers, beside pread for the rest, where the GPU supports read-only
 *    registration (CU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_SUPPORTED); else, or
 *    once a registration fails, pread. Converting chunks, O_DIRECT reads and host or sim
 *    targets always use pread. The report says which moved how many bytes. */
enum hoist_source {
	HOIST_SOURCE_AUTO = 0,
	HOIST_SOURCE_PREAD = 1,
	HOIST_SOURCE_REGISTER = 2,
};

/* Starting early: see hoist_warmup_start. */
struct hoist_warmup;

struct hoist_options {
	/* Target: "cuda:0", "cuda" (every GPU), "cpu", "sim:0", "sim". NULL: every GPU
	 * if a CUDA driver and GPU are present, else cpu (with a notice; a warning where
	 * a driver is present but cannot use its GPUs). Read by hoist_plan_create. */
	const char *device;
	/* Placement strategy: NULL or "auto", "balanced", "sequential", or the path of a
	 * JSON file mapping module / tensor-name prefixes to devices (accelerate's form).
	 * Unset with a single-device target, every tensor goes to that device. Read by
	 * hoist_plan_create. */
	const char *device_map;
	/* Budgets: "0=20GiB,1=20GiB,cpu=64GiB,disk=100GB". Bare numbers are GPU ordinals
	 * of the target's kind. Units B, KB/MB/GB/TB (decimal), KiB/MiB/GiB/TiB. Read by
	 * hoist_plan_create. */
	const char *max_memory;
	/* Convert floating tensors to this on load (see hoist_dtype_loaded); 0 keeps.
	 * Read by hoist_plan_create: the arena sizes depend on it, and a load converts as
	 * its plan says. */
	enum hoist_dtype dtype;
	enum hoist_disk disk; /* read by hoist_plan_create */
	/* cpu targets' memory; read by hoist_plan_create (mmap budgets no arena) and by
	 * hoist_model_load. */
	enum hoist_host_memory host_memory;
	/* The stream, read by hoist_model_load: */
	unsigned threads;       /* reader threads; 0: min(16, 2 x cores) */
	uint64_t chunk_bytes;   /* read unit; 0: 32 MiB (at most staging_bytes / 2 / threads) */
	uint64_t staging_bytes; /* staging ring in total; 0: 256 MiB */
	int direct;             /* non-zero: O_DIRECT reads (cold storage) */
	hoist_progress_fn progress;
	void *progress_arg;
	hoist_log_fn log; /* NULL: notices are dropped (hoist_plan_notice keeps one) */
	void *log_arg;
	/* The simulated accelerator (hoist_testing.h); NULL: one sim device of 4 GiB. */
	const struct hoist_sim_options *sim;
	/* Told of each tensor as it lands (hoist_model_load); NULL: not told. */
	hoist_landed_fn landed;
	void *landed_arg;
	/* The units to place, in execution order, and the tie groups, from the caller
	 * (hoist_plan_create; see struct hoist_plan_request). NULL: hoist forms them. */
	const struct hoist_plan_request *request;
	/* The path of a module-order file (hoist_plan_create, when request is NULL): the
	 * units and their execution order, one unit per line (see "Planning in detail"). */
	const char *module_order;
	enum hoist_offload_room offload_room; /* read by hoist_plan_create */
	/* Where a load to a GPU takes bytes from: pread into pinned staging, or the page
	 * cache itself, registered with the driver (see enum hoist_source). Read by
	 * hoist_model_load. */
	enum hoist_source source;
	/* The slow first steps of a load, started early (hoist_warmup_start): read by
	 * hoist_model_load, which waits for them and takes over what they made. NULL:
	 * none. */
	struct hoist_warmup *warmup;
};

/* ------------------------------------------------------------------------------ */
/* Checkpoints: metadata only. No tensor bytes are read by these calls.           */

struct hoist_checkpoint;

struct hoist_tensor_info {
	const char *name;
	enum hoist_dtype dtype;
	unsigned ndim;        /* 0 for a scalar */
	const int64_t *shape; /* ndim entries */
	uint64_t numel;
	uint32_t shard;  /* index into the checkpoint's shards */
	uint64_t offset; /* absolute byte offset of the data in the shard file */
	uint64_t nbytes;
};

struct hoist_shard {
	const char *path; /* as opened: the directory joined with the index's file name */
	uint64_t size;    /* bytes, when opened */
};

struct hoist_metadata {
	const char *key, *value;
};

/* Numbered layers. A layer group is the tensors under one "<stem>.<N>." prefix, such
 * as "model.layers.12." (see hoist_layer_group_prefix); a family is the groups whose
 * prefixes differ only in N ("model.layers.N."). */
struct hoist_layer_group {
	const char *prefix; /* "model.layers.12." */
	size_t tensors;
	uint64_t bytes;
	size_t first_tensor; /* its first tensor in file order */
};

struct hoist_layer_family {
	const char *pattern; /* the prefix with its number as N: "model.layers.N." */
	size_t groups;       /* how many numbers: 28 */
	size_t tensors;      /* in all its groups */
	uint64_t bytes;      /* in all its groups */
	uint64_t group_min_bytes, group_max_bytes; /* of one group */
	size_t first_tensor;                       /* its first tensor in file order */
};

/* Opens a checkpoint: a .safetensors file; a directory holding model.safetensors or
 * model.safetensors.index.json and its shards; an index file; or, where path is none
 * of these, a Hugging Face Hub model id ("Qwen/Qwen2-VL-7B-Instruct", optionally
 * "@revision") found in the local Hub cache (hoist_hub_resolve; never downloaded).
 * Reads and validates
 * every shard's header (and config.json when present); the headers of a checkpoint
 * of many tensors are read on a few threads of its own, joined before it returns.
 * opt may be NULL (its log callback receives the warnings).
 * Errors: HOIST_ERR_IO (missing or unreadable file), HOIST_ERR_FORMAT (a header or
 * index breaks the format; the message names the file, the tensor and the rule),
 * HOIST_ERR_NOMEM, HOIST_ERR_INVALID. */
enum hoist_status hoist_checkpoint_open(const char *path, const struct hoist_options *opt,
                                        struct hoist_checkpoint **out);
void hoist_checkpoint_close(struct hoist_checkpoint *ckpt);

/* Seconds hoist_checkpoint_open took (a load's report counts them as its open phase). */
double hoist_checkpoint_open_seconds(const struct hoist_checkpoint *ckpt);

size_t hoist_checkpoint_shard_count(const struct hoist_checkpoint *ckpt);
const struct hoist_shard *hoist_checkpoint_shard(const struct hoist_checkpoint *ckpt, size_t i);

/* Tensors are numbered 0..count-1 in file order: by shard, then by data offset. */
size_t hoist_checkpoint_tensor_count(const struct hoist_checkpoint *ckpt);
const struct hoist_tensor_info *hoist_checkpoint_tensor(const struct hoist_checkpoint *ckpt,
                                                        size_t i);
/* Finds a tensor by exact name. Errors: HOIST_ERR_INVALID if absent (message names it). */
enum hoist_status hoist_checkpoint_find(const struct hoist_checkpoint *ckpt, const char *name,
                                        size_t *index);
uint64_t hoist_checkpoint_total_bytes(const struct hoist_checkpoint *ckpt);

/* The `__metadata__` entries, merged over the shards (first shard wins), sorted by key. */
size_t hoist_checkpoint_metadata_count(const struct hoist_checkpoint *ckpt);
const struct hoist_metadata *hoist_checkpoint_metadata(const struct hoist_checkpoint *ckpt,
                                                       size_t i);

/* From config.json when present, else NULL: "architectures"[0] and "torch_dtype"
 * (or "dtype"). */
const char *hoist_checkpoint_architecture(const struct hoist_checkpoint *ckpt);
const char *hoist_checkpoint_config_dtype(const struct hoist_checkpoint *ckpt);

/* Things worth saying that are not errors (e.g. the index's total_size disagrees
 * with the shards). */
size_t hoist_checkpoint_warning_count(const struct hoist_checkpoint *ckpt);
const char *hoist_checkpoint_warning(const struct hoist_checkpoint *ckpt, size_t i);

/* The layer groups and their families, each in order of its first tensor, and how
 * many tensors (and bytes) belong to no group. Computed on first use: where memory
 * runs out then, both counts are 0 and hoist_checkpoint_ungrouped says 0 tensors. */
size_t hoist_checkpoint_layer_group_count(const struct hoist_checkpoint *ckpt);
const struct hoist_layer_group *hoist_checkpoint_layer_group(const struct hoist_checkpoint *ckpt,
                                                             size_t i);
size_t hoist_checkpoint_layer_family_count(const struct hoist_checkpoint *ckpt);
const struct hoist_layer_family *hoist_checkpoint_layer_family(const struct hoist_checkpoint *ckpt,
                                                               size_t i);
void hoist_checkpoint_ungrouped(const struct hoist_checkpoint *ckpt, size_t *tensors,
                                uint64_t *bytes);

/* The length of name's layer-group prefix: the shortest prefix ending in ".<N>."
 * with N all digits ("model.layers.12." of "model.layers.12.mlp.up_proj.weight",
 * "visual.blocks.3." of "visual.blocks.3.attn.qkv.bias"); 0 if it has none. */
size_t hoist_layer_group_prefix(const char *name);

/* ------------------------------------------------------------------------------ */
/* The Hugging Face Hub cache: model ids resolved offline, never downloaded.       */

/* Finds the local snapshot directory of Hub model `id` ("org/name" or "name") at
 * `revision` (a branch or tag under refs/, or a commit hash; NULL: "main") in the Hub
 * cache as the huggingface_hub library lays it out: $HF_HUB_CACHE, else
 * $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub,
 * else ~/.cache/huggingface/hub; there models--{org}--{name}/refs/{revision} names a
 * commit and snapshots/{commit}/ holds the files. Writes the directory into out
 * (always NUL-terminated). Reads only the cache: nothing is downloaded.
 * Errors: HOIST_ERR_INVALID (not a model id, or out too small), HOIST_ERR_IO (not in
 * the cache: the message names every place it looked and says how to fetch it). */
enum hoist_status hoist_hub_resolve(const char *id, const char *revision, char *out, size_t size);

/* ------------------------------------------------------------------------------ */
/* Plans: where each tensor goes, from metadata alone.                            */

/* A unit of the caller's plan request: tensors placed together, never split. */
struct hoist_plan_unit {
	const char *name; /* shown in the plan; the key of a {module: device} map */
	/* Checkpoint tensor names or name prefixes covering the unit's tensors: "a.b"
	 * covers "a.b" and "a.b.c" (component boundaries), "" covers everything. A tensor
	 * belongs to the unit with the longest prefix covering it. */
	const char *const *prefixes;
	size_t prefix_count;
	/* NULL: the planner places it; else "cuda:N", "sim:N", a GPU ordinal ("0"),
	 * "cpu" or "disk": the unit goes there, counted against that budget. */
	const char *device;
};

/* What the caller knows of the model (hoist.transformers: its modules in execution
 * order, its no-split modules, accelerate's tied parameters); struct hoist_options
 * .request points to one. Borrowed for the call only. */
struct hoist_plan_request {
	const struct hoist_plan_unit *units; /* in execution order: the fill order */
	size_t unit_count;
	/* Tie groups, units that must share a device, in CSR form: group g is the units
	 * tie_units[tie_offsets[g] .. tie_offsets[g + 1]) (tie_offsets has tie_count + 1
	 * entries). */
	const size_t *tie_units;
	const size_t *tie_offsets;
	size_t tie_count;
	/* Checkpoint tensors not to load (a tied alias, a key the model lacks): left in
	 * their files like disk tensors, budgeted nowhere. */
	const char *const *skip;
	size_t skip_count;
};

struct hoist_plan;

struct hoist_plan_device {
	struct hoist_device device;
	uint64_t budget; /* UINT64_MAX where unlimited */
	uint64_t bytes;  /* arena bytes planned; disk: file bytes left in place */
	size_t tensors;
	const char *budget_source; /* "max_memory", "free now less 7 GiB headroom", ... */
};

struct hoist_placement {
	struct hoist_device device;
	uint64_t offset;        /* in that device's arena; disk: in its file */
	enum hoist_dtype dtype; /* once loaded (hoist_dtype_loaded) */
	uint64_t nbytes;        /* once loaded */
};

/* Makes a plan for ckpt under opt (device, device_map, max_memory, dtype, disk,
 * host_memory). Deterministic: the same inputs give the same plan. Without
 * opt->device_map and with a single target device, everything goes to that device.
 * The plan borrows ckpt, which must outlive it.
 * Errors: HOIST_ERR_INVALID (a bad option or map file), HOIST_ERR_NO_DEVICE (a GPU
 * was asked for explicitly and none is present), HOIST_ERR_DEVICE (a GPU was asked
 * for and the driver cannot use its GPUs), HOIST_ERR_NO_SPACE (the message
 * lists what did not fit and by how much), HOIST_ERR_NOMEM. */
enum hoist_status hoist_plan_create(const struct hoist_checkpoint *ckpt,
                                    const struct hoist_options *opt, struct hoist_plan **out);
void hoist_plan_free(struct hoist_plan *plan);

/* The checkpoint the plan is for. */
const struct hoist_checkpoint *hoist_plan_checkpoint(const struct hoist_plan *plan);
/* The dtype the plan converts to (options.dtype when it was made); 0: as stored. */
enum hoist_dtype hoist_plan_dtype(const struct hoist_plan *plan);
/* Seconds hoist_plan_create took (a load's report counts them as its plan phase). */
double hoist_plan_seconds(const struct hoist_plan *plan);

/* Devices the plan uses or budgets for, in a fixed order (GPUs by ordinal, cpu, disk). */
size_t hoist_plan_device_count(const struct hoist_plan *plan);
const struct hoist_plan_device *hoist_plan_device(const struct hoist_plan *plan, size_t i);
/* Where tensor i (checkpoint numbering) goes; hoist_plan_tensor_count is the
 * checkpoint's tensor count. */
size_t hoist_plan_tensor_count(const struct hoist_plan *plan);
const struct hoist_placement *hoist_plan_tensor(const struct hoist_plan *plan, size_t i);

/* The units the plan placed, in the order it filled the devices (the execution
 * order: the request's, the module-order file's, or hoist's own), with where each
 * went. */
struct hoist_plan_unit_info {
	const char *name;
	struct hoist_device device;
	uint64_t bytes; /* arena bytes; on disk: file bytes left in place */
	size_t tensors;
	int tied; /* non-zero: in a tie group (on its group's device) */
};
size_t hoist_plan_unit_count(const struct hoist_plan *plan);
const struct hoist_plan_unit_info *hoist_plan_unit(const struct hoist_plan *plan, size_t i);
/* How many times the device changes from one unit to the next along that order: 0
 * for a plan on one device, the number of devices less one when each holds one run. */
size_t hoist_plan_device_changes(const struct hoist_plan *plan);

/* Human-readable plan (groups -> device, bytes against budgets, what spilled and
 * why, the order and its device changes, predicted load time), and the same as one
 * JSON object.
 * Both flush out before they return.
 * Errors: HOIST_ERR_IO when writing fails (a full disk, a closed pipe). */
enum hoist_status hoist_plan_print(const struct hoist_plan *plan, FILE *out);
enum hoist_status hoist_plan_print_json(const struct hoist_plan *plan, FILE *out);

/* Planning in detail:
 *  - Units: a layer group (hoist_layer_group_prefix) or else a module (the name
 *    without its last component) is never split by auto, balanced or sequential.
 *    An explicit map places each tensor by the longest key covering it, as the file
 *    says.
 *  - Order: devices are filled along the model's execution order, so that each
 *    device holds one contiguous run of it. Without a request or a module-order
 *    file, hoist infers it from the names: the language model's input embeddings
 *    first, then a vision tower ("visual", "vision_tower", "vision_model", ...: its
 *    embeddings, numbered blocks, the rest, then a projector), then the language
 *    model (layers in numeric order), its final norm, and the head (lm_head) last.
 *    With config.json's "tie_word_embeddings": true the embeddings and the head are
 *    a tie group.
 *  - Module-order file (options.module_order): one unit per line, in execution
 *    order, as its checkpoint-name prefixes separated by spaces; "tie A B ..." lines
 *    make a tie group of the units whose first prefixes are A, B, ...; "#" starts a
 *    comment. A tensor no line covers is HOIST_ERR_INVALID naming it.
 *  - Tie groups go to one device: the device where their first unit goes, which
 *    must have room for the whole group then.
 *  - Budgets not given in max_memory: GPUs get what is free now less max(1 GiB, 5% of
 *    their memory); sim devices their capacity; cpu MemAvailable less max(1 GiB, 10%)
 *    (unlimited with HOIST_HOST_MMAP); disk unlimited. If max_memory names GPUs, the
 *    plan is for exactly those GPUs, present or not (a load then needs them).
 *  - Arena bytes: each tensor (at its loaded dtype) rounded up to 256 bytes, at offsets
 *    in checkpoint tensor order. A disk device's bytes are the file bytes it references
 *    (a disk tensor stays in its file as stored; with opt->dtype, its view, reads and
 *    fetches are at the loaded dtype, converted as they are read).
 *  - Devices listed: the target's GPUs, plus cpu and disk where they receive tensors
 *    or max_memory names them.
 *  - auto = balanced: spread over the GPUs in proportion to their budgets, in
 *    contiguous runs, when the model fits them, else as sequential. sequential: fill
 *    GPUs by ordinal, then cpu, then disk, moving on when a unit does not fit and
 *    never back (a unit that fits no device from there on goes to the first with
 *    room rather than fail). Units with a device given by the request are placed
 *    first. Room for executing offloaded layers: options.offload_room.
 *  - Map files: {"prefix": device}, device a GPU ordinal (number or digit string),
 *    "cpu", "disk", "cuda:N" or "sim:N"; "" covers everything; a key that covers no
 *    tensor is retried under transformers' renames ("model.language_model." <->
 *    "model.", "model.visual." <-> "visual.", ...) and otherwise ignored (printed).
 *    A tensor no key covers is HOIST_ERR_INVALID. */

/* A one-line notice about the plan (e.g. "no GPU (...): every tensor planned for cpu"),
 * or NULL; also sent to the log callback at HOIST_LOG_NOTICE, or HOIST_LOG_WARNING for
 * "GPUs present but unusable (...): every tensor planned for cpu". Borrowed from the
 * plan. */
const char *hoist_plan_notice(const struct hoist_plan *plan);

/* Predicted seconds to load by this plan: from this machine's figures where hoist
 * bench kept them (hoist_plan_predict, below, says which and the bounding link), else
 * from assumed bandwidths (storage 2 GB/s cold, page cache 40 GB/s warm, host->GPU
 * copy 55 GB/s, as measured on one H200 machine; sim: its bandwidth cap when set):
 * cold non-zero for a cold page cache. Disk-placed tensors cost nothing. -1 for a
 * NULL plan. */
double hoist_plan_predicted_seconds(const struct hoist_plan *plan, int cold);

/* ------------------------------------------------------------------------------ */
/* Loading.                                                                        */

/* A loaded tensor. data is a device address for cuda and sim (not dereferenceable on
 * the host), a host address for cpu, and NULL for disk. */
struct hoist_tensor {
	const char *name;
	struct hoist_device device;
	void *data;
	enum hoist_dtype dtype; /* after conversion */
	unsigned ndim;
	const int64_t *shape;
	uint64_t nbytes; /* after conversion */
};

/* A device the load put tensors on. */
struct hoist_model_device {
	struct hoist_device device;
	uint64_t bytes;     /* tensor bytes there (after conversion); disk: in the files */
	const char *memory; /* what holds them: "pageable", "pinned by cuMemHostAlloc",
	                     * "device memory (cuMemAlloc_v2)", "left in its files", ... */
};

/* Loads the plan's checkpoint as the plan says (devices, offsets, dtype), with opt's
 * stream settings (threads, chunk_bytes, staging_bytes, direct, host_memory, source,
 * warmup, progress, landed, log, sim). The staging ring holds at least two chunks per
 * reader: where staging_bytes cannot, the chunk is cut (256 MiB and 16 readers:
 * 8 MiB). Either every tensor lands and HOIST_OK is returned, or nothing stays
 * allocated (but what the landed callback kept references to) and an error is
 * returned. Host memory "mmap" views are private: a write goes to the process's own
 * copy of the page, never to the file. The plan may be freed after the call; the
 * checkpoint must outlive the model.
 * Errors: any of the above; HOIST_ERR_INVALID for host memory "mmap" with a plan that
 * converts a tensor it puts on cpu; HOIST_ERR_DEVICE names the driver error;
 * HOIST_ERR_NO_SPACE when a device has less memory than the plan assumed, or
 * page-locked host memory runs out; HOIST_ERR_CANCELLED when the progress (or landed)
 * callback asked to stop; HOIST_ERR_IO, "<file>: changed while it was being loaded
 * (size A -> B bytes)" (or "modified: mtime ...", "replaced by another file: ...",
 * "removed") when a shard's size or mtime is no longer what it was when its header
 * was read: checked as the load opens each shard and again after the stream, so a
 * landed callback may already have been given tensors of a load that then fails.
 * The files must stay as they are from hoist_checkpoint_open until the model is
 * freed (disk tensors are read from them); after a change, open the checkpoint
 * again. */
enum hoist_status hoist_model_load(const struct hoist_plan *plan, const struct hoist_options *opt,
                                   struct hoist_model **out);
/* Drops the caller's reference. The memory (arenas, mappings, devices) is freed
 * when the last reference goes: DLPack exports (hoist_dlpack.h) and
 * hoist_model_retain hold references too, and may be dropped on any thread. Once
 * the caller's reference is gone only the memory lives on (the checkpoint may be
 * closed). */
void hoist_model_free(struct hoist_model *model);
/* Takes another reference (dropped by hoist_model_free); returns model. Thread-safe. */
struct hoist_model *hoist_model_retain(struct hoist_model *model);

/* Same numbering as the checkpoint. */
size_t hoist_model_tensor_count(const struct hoist_model *model);
const struct hoist_tensor *hoist_model_tensor(const struct hoist_model *model, size_t i);

/* The devices holding tensors, in the plan's order. */
size_t hoist_model_device_count(const struct hoist_model *model);
const struct hoist_model_device *hoist_model_device(const struct hoist_model *model, size_t i);

/* Copies tensor `index` (as loaded, after conversion) into host memory dst of size
 * bytes (must equal its nbytes), from whatever device holds it; disk tensors are
 * read from their file, checked before and after the read against the size and mtime
 * it had when the checkpoint was opened. Errors: HOIST_ERR_INVALID, HOIST_ERR_IO
 * (also "<file>: changed since the checkpoint was opened, reading tensor "<name>"
 * (...)"), HOIST_ERR_DEVICE. */
enum hoist_status hoist_model_read(const struct hoist_model *model, size_t index, void *dst,
                                   uint64_t size);
/* Copies bytes [offset, offset + size) of tensor `index` as loaded into dst (for a
 * disk tensor loaded with conversion, whole elements). Errors as hoist_model_read. */
enum hoist_status hoist_model_read_at(const struct hoist_model *model, size_t index,
                                      uint64_t offset, void *dst, uint64_t size);

/* Fetches tensor `index` onto `device` now, e.g. a disk-placed tensor onto sim:0 or
 * cuda:0, allocating a fresh buffer there; *out describes it and stays valid until
 * the model is freed. Errors as hoist_model_read, plus HOIST_ERR_NO_SPACE. */
enum hoist_status hoist_model_fetch(struct hoist_model *model, size_t index,
                                    struct hoist_device device, struct hoist_tensor *out);

/* ------------------------------------------------------------------------------ */
/* Starting early (appended in 0.2, issue 8): the slow first steps of a load to GPUs,  */
/* on a thread of their own while the caller opens the checkpoint and plans.        */

/* Starts, on a thread of its own, what a load by opt does first on the GPUs
 * opt->device names (every GPU for NULL or "cuda"; nothing for cpu, sim or disk):
 * loading the CUDA driver, opening each GPU (its primary context retained, its copy
 * streams made), and pinning a staging ring for opt's threads, chunk_bytes and
 * staging_bytes. Returns at once. Pass it as options.warmup to hoist_model_load,
 * which waits for it, takes over the GPUs it opened and borrows its ring. The caller
 * owns it: hoist_warmup_free joins the thread and frees what no load took (the ring
 * included, so free it only after every load that borrowed the ring has returned;
 * a program about to exit may leave it, and a loaded model, to process exit).
 * Failures of the steps themselves are not reported: the load meets them again and
 * says what failed. Errors: HOIST_ERR_NOMEM (no memory or no thread). */
enum hoist_status hoist_warmup_start(const struct hoist_options *opt, struct hoist_warmup **out);
void hoist_warmup_free(struct hoist_warmup *warmup);

/* ------------------------------------------------------------------------------ */
/* The timing report of a load.                                                    */

/* The link that set the stream's pace. */
enum hoist_bound {
	HOIST_BOUND_NONE = 0,    /* nothing was streamed */
	HOIST_BOUND_STORAGE,     /* the readers, reading from storage */
	HOIST_BOUND_HOST_MEMORY, /* the readers, copying out of the page cache */
	HOIST_BOUND_STAGING,     /* readers waiting for a free staging buffer */
	HOIST_BOUND_DEVICE_COPY, /* copies into the devices */
};

/* "none", "storage", "host memory", "staging", "device copy"; NULL for no bound. */
const char *hoist_bound_name(enum hoist_bound bound);

struct hoist_report {
	double seconds[HOIST_PHASE_COUNT]; /* by enum hoist_phase */
	double total_seconds;              /* their sum */
	size_t shards, tensors;
	uint64_t checkpoint_bytes; /* tensor bytes in the files */
	uint64_t moved_bytes;      /* bytes landed on devices by the stream (after conversion) */
	uint64_t read_bytes;       /* bytes the stream read from the files */
	/* Bytes the process read from storage during the stream (page cache hits
	 * excluded), or UINT64_MAX where the kernel does not say. */
	uint64_t storage_read_bytes;
	enum hoist_bound bound;
	/* Fractions of the stream's wall time: readers in their reads, readers waiting for
	 * a free staging buffer, a device with copies in flight (the busiest device). */
	double read_busy, staging_wait, copy_busy;
	unsigned readers;
	size_t chunks;        /* read units */
	size_t direct_chunks; /* read straight into host memory, without staging */
	uint64_t chunk_bytes;
	size_t staging_slots; /* 0: no staging ring */
	uint64_t staging_slot_bytes;
	const char *staging;    /* what the ring is: "pinned by cuMemHostAlloc", "none" */
	int direct_io;          /* non-zero: O_DIRECT reads */
	int mapped;             /* non-zero: host tensors are views of the mapped files */
	enum hoist_dtype dtype; /* the conversion target; 0: none */
	const char *note;       /* e.g. why O_DIRECT was not used; "" for none */
	/* ---- appended in 0.2: bytes by source (options.source) ---- */
	uint64_t pread_bytes;      /* read by the readers (pread) */
	uint64_t registered_bytes; /* copied by a GPU straight from the page cache */
	size_t registered_chunks;  /* windows registered for that */
};

/* The load's report, borrowed from the model. */
const struct hoist_report *hoist_model_report(const struct hoist_model *model);

/* The report as text (one line per phase, the bound and why) and as one JSON object.
 * Both flush out before they return. Errors: HOIST_ERR_IO when writing fails. */
enum hoist_status hoist_model_report_print(const struct hoist_model *model, FILE *out);
enum hoist_status hoist_model_report_print_json(const struct hoist_model *model, FILE *out);

/* ------------------------------------------------------------------------------ */
/* Proving and explaining: verify what landed, measure this machine's links,       */
/* predict from them, and find what would make a load slow or fail.                */

/* -- Verification: every tensor where it landed, against the file's bytes. -- */

enum hoist_verify_result {
	HOIST_VERIFY_MATCH = 0,   /* the bytes where it landed are the file's (converted as
	                           * the load converts) */
	HOIST_VERIFY_DIFFER = 1,  /* they are not: first_diff says where */
	HOIST_VERIFY_IN_FILE = 2, /* placed on disk: nothing landed; the file's bytes were
	                           * hashed (and, with HOIST_VERIFY_SHA256, digested) */
};

/* What was found for one tensor. */
struct hoist_verify_tensor {
	const char *name; /* borrowed from the checkpoint */
	struct hoist_device device;
	enum hoist_verify_result result;
	uint64_t nbytes; /* as loaded (after conversion) */
	/* DIFFER: the offset, in the tensor as loaded, of the first byte that differs,
	 * and the two bytes there; else UINT64_MAX and 0. */
	uint64_t first_diff;
	uint8_t landed_byte, file_byte;
	/* XXH3 (64-bit, seed 0, as libxxhash's XXH3_64bits) of all nbytes: where they
	 * landed, and of the file's (converted as the load converts). IN_FILE: both the
	 * file's. */
	uint64_t xxh3_landed, xxh3_file;
	/* With HOIST_VERIFY_SHA256: SHA-256 of the bytes where they landed (IN_FILE: of
	 * the file's, as loaded); else all zero. */
	uint8_t sha256[32];
	/* Non-zero: hashed where it lies (host memory); zero: read back from the device
	 * in chunks (or, IN_FILE, read from the file). */
	int in_place;
};

struct hoist_verify_summary {
	size_t tensors, matched, differ, in_file;
	uint64_t landed_bytes;    /* bytes checked where they landed */
	uint64_t in_place_bytes;  /* of them, hashed in host memory where they lie */
	uint64_t read_back_bytes; /* of them, read back from devices */
	uint64_t file_bytes;      /* bytes read from the files */
	unsigned threads;
	double seconds; /* hoist_model_verify's wall time */
};

enum {
	HOIST_VERIFY_SHA256 = 1u << 0, /* also a SHA-256 of every tensor (slower) */
};

/* Progress of a verification: bytes checked of bytes to check. Non-zero cancels. */
typedef int (*hoist_verify_progress_fn)(uint64_t done, uint64_t total, void *arg);

struct hoist_verify_options {
	unsigned flags;                    /* HOIST_VERIFY_* */
	unsigned threads;                  /* 0: one per core, at most 16 */
	uint64_t chunk_bytes;              /* unit of reading and reading back; 0: 2 MiB */
	hoist_verify_progress_fn progress; /* on the calling thread, every 100 ms or so */
	void *progress_arg;
};

struct hoist_verify;

/* Checks every tensor of the model where it landed against its file: the file's
 * bytes are read (and converted as the load converted them), the landed bytes are
 * hashed where they lie in host memory or read back from the device in chunks, and
 * both are hashed with XXH3; where the hashes part, the first differing byte is
 * found. Tensors are checked on opt->threads threads of its own, joined before it
 * returns; a device's read-backs are serialized. opt may be NULL. *out lists every
 * tensor in checkpoint order; a difference is a result, not an error.
 * The files are mapped where they can be, so one truncated while it is hashed
 * faults (SIGBUS), as any mapping does.
 * Errors: HOIST_ERR_INVALID, HOIST_ERR_NOMEM, HOIST_ERR_IO (a file could not be read:
 * the message names it, the tensor and the offset; or a file changed since the
 * checkpoint was opened, before or while it was hashed: "<file>: changed since the
 * checkpoint was opened (...)", "... changed while it was being verified (...)", so
 * its differences are not taken for the load's), HOIST_ERR_DEVICE (a read-back
 * failed), HOIST_ERR_CANCELLED. */
enum hoist_status hoist_model_verify(const struct hoist_model *model,
                                     const struct hoist_verify_options *opt,
                                     struct hoist_verify **out);
void hoist_verify_free(struct hoist_verify *v);

/* Same numbering as the checkpoint. */
size_t hoist_verify_tensor_count(const struct hoist_verify *v);
const struct hoist_verify_tensor *hoist_verify_tensor(const struct hoist_verify *v, size_t i);
/* Counts, bytes and seconds; borrowed from v. NULL for a NULL v. */
const struct hoist_verify_summary *hoist_verify_summary(const struct hoist_verify *v);

/* -- The links of a load, as hoist bench measures them. -- */

enum hoist_link {
	HOIST_LINK_NONE = 0,
	HOIST_LINK_STORAGE,     /* storage -> host memory, cold: O_DIRECT, parallel readers */
	HOIST_LINK_PAGE_CACHE,  /* page cache -> reused host buffers (a staging ring) */
	HOIST_LINK_HOST_MEMORY, /* page cache -> fresh host memory (a cpu arena, first touch) */
	HOIST_LINK_MEMCPY,      /* host memory -> host memory */
	HOIST_LINK_PINNED_TO_DEVICE,   /* pinned host memory -> a GPU */
	HOIST_LINK_PAGEABLE_TO_DEVICE, /* pageable host memory -> a GPU */
	HOIST_LINK_REGISTER, /* registering page-cache memory with the GPU driver (read-only) */
	HOIST_LINK_REGISTERED_TO_DEVICE, /* registered page-cache memory -> a GPU */
	HOIST_LINK_COUNT                 /* not a link */
};

/* "storage", "page cache", "host memory", "memcpy", "pinned -> device",
 * "pageable -> device", "registration", "registered -> device"; NULL for none. */
const char *hoist_link_name(enum hoist_link link);

/* One measured link. */
struct hoist_figure {
	enum hoist_link link;
	struct hoist_device device; /* the GPU of device links; cpu for the others */
	double bytes_per_second;
	uint64_t bytes;      /* moved by the measurement */
	double seconds;      /* it took */
	unsigned threads;    /* threads (readers, copiers) it used */
	const char *where;   /* storage: the file system, its device and mount point; GPU:
	                      * its name; host links: "" */
	int64_t measured_at; /* seconds since the epoch */
};

struct hoist_bench_options {
	/* Non-zero: larger samples and the median of three (tens of seconds, not a few). */
	int thorough;
	/* Without a path, where the storage sample is written (and removed); NULL: the
	 * directory of the stored figures. */
	const char *scratch_dir;
	hoist_log_fn log; /* a line per measurement, at HOIST_LOG_INFO */
	void *log_arg;
	/* Asked on the calling thread between measurements and between the 4 MiB blocks
	 * of the sample it writes: non-zero stops the run with HOIST_ERR_CANCELLED, its
	 * sample file removed and nothing kept. NULL: the run is not cancelled. */
	int (*cancel)(void *arg);
	void *cancel_arg;
};

struct hoist_bench;

/* Measures the links a load passes through, in a few seconds: storage read cold
 * (O_DIRECT, parallel) and warm (page cache), into fresh host memory, memcpy, and per
 * GPU pinned and pageable host-to-device copies and read-only registration of
 * page-cache memory where the driver has it. Storage is measured on path (a
 * checkpoint: a sample of its shards, which then stays in the page cache) or, with
 * path NULL, on a sample file written in opt->scratch_dir. Figures are only
 * returned; hoist_bench_save keeps them. What could not be measured is listed by
 * hoist_bench_skipped, with the reason. opt may be NULL.
 * Errors: HOIST_ERR_IO (the sample could not be written or read), HOIST_ERR_FORMAT
 * (path is no checkpoint), HOIST_ERR_NOMEM, HOIST_ERR_DEVICE, HOIST_ERR_CANCELLED
 * (opt->cancel asked to stop). */
enum hoist_status hoist_bench_run(const char *path, const struct hoist_bench_options *opt,
                                  struct hoist_bench **out);
/* The figures kept for this machine (empty where none are).
 * Errors: HOIST_ERR_FORMAT (the file is damaged: the message names it), HOIST_ERR_IO,
 * HOIST_ERR_NOMEM. */
enum hoist_status hoist_bench_stored(struct hoist_bench **out);
/* Keeps b's figures for this machine, replacing those of the same links (storage
 * figures per file system, so the figures of several disks are kept side by side).
 * Errors: HOIST_ERR_IO. */
enum hoist_status hoist_bench_save(const struct hoist_bench *b);
void hoist_bench_free(struct hoist_bench *b);

size_t hoist_bench_figure_count(const struct hoist_bench *b);
const struct hoist_figure *hoist_bench_figure(const struct hoist_bench *b, size_t i);
/* What was not measured, and why ("pinned -> device: no CUDA driver: ..."). */
size_t hoist_bench_skipped_count(const struct hoist_bench *b);
const char *hoist_bench_skipped(const struct hoist_bench *b, size_t i);

/* Where this machine's figures are kept: $XDG_CACHE_HOME/hoist/bench-<host>.json,
 * or ~/.cache/hoist/ without XDG_CACHE_HOME (an absolute path); into buf, always
 * NUL-terminated. Errors: HOIST_ERR_INVALID (no home directory, or buf too small). */
enum hoist_status hoist_bench_path(char *buf, size_t size);

/* -- Predictions from the figures, and a load judged against its prediction. -- */

struct hoist_prediction {
	double seconds;        /* the stream's predicted seconds */
	enum hoist_link bound; /* the link that sets them; NONE when nothing is read */
	struct hoist_device bound_device;
	uint64_t bound_bytes;          /* bytes crossing that link */
	double bound_bytes_per_second; /* its figure */
	/* How many of the figures used are assumptions (storage 2 GB/s, page cache and
	 * host memory 40 GB/s, host->GPU 55 GB/s, from one H200 machine) rather than
	 * measured here by hoist bench (or a sim device's bandwidth cap): 0 means this
	 * machine's own. */
	unsigned assumed;
	int64_t measured_at; /* the newest figure used; 0 when all are assumed */
};

/* Predicts the stream of a load by plan from this machine's stored figures where
 * hoist bench kept them (storage: the figure of the file system holding the
 * checkpoint), else from the assumptions: from a cold page cache when cold is
 * non-zero. hoist_plan_predicted_seconds gives the same seconds.
 * Errors: HOIST_ERR_INVALID. */
enum hoist_status hoist_plan_predict(const struct hoist_plan *plan, int cold,
                                     struct hoist_prediction *out);

/* A load held against the prediction for its plan. */
struct hoist_shortfall {
	int slow; /* non-zero: the stream ran at under half its predicted speed */
	int cold; /* the prediction it was held to: cold storage (most bytes came from
	           * storage, or O_DIRECT), else the page cache */
	double seconds, predicted_seconds; /* the stream's */
	/* The link that set the stream's pace (the report's bound, as a link: a ring
	 * too small is charged to the copies it held up), its device, the speed it ran
	 * at over the stream and its figure (measured here or assumed). */
	enum hoist_bound bound;
	enum hoist_link link;
	struct hoist_device device;
	double bytes_per_second, predicted_bytes_per_second;
	int figure_known; /* non-zero: that figure was measured here (or is a sim cap) */
	unsigned assumed; /* as in hoist_prediction, for the whole prediction */
};

/* Judges the load of model by plan (the plan it was loaded by) against the plan's
 * prediction. Errors: HOIST_ERR_INVALID. */
enum hoist_status hoist_model_shortfall(const struct hoist_model *model,
                                        const struct hoist_plan *plan, struct hoist_shortfall *out);

/* -- The doctor: what would make loading this checkpoint slow or fail. -- */

enum hoist_check {
	HOIST_CHECK_PAGE_CACHE,    /* shards not in the page cache (mincore), cold-read cost */
	HOIST_CHECK_HOST_MEMORY,   /* host bytes of the plan against available RAM */
	HOIST_CHECK_GPU_MEMORY,    /* the plan against the devices' free memory */
	HOIST_CHECK_FILE_SYSTEM,   /* network, FUSE, overlay, tmpfs */
	HOIST_CHECK_MEMLOCK,       /* locked-memory limit against what would be locked */
	HOIST_CHECK_GPU_DRIVER,    /* no driver, or a driver with no usable GPU, and why */
	HOIST_CHECK_HUGE_PAGES,    /* transparent huge pages for host arenas */
	HOIST_CHECK_NUMA,          /* NUMA nodes, the GPUs' and the process's */
	HOIST_CHECK_STORAGE_SPEED, /* the files' storage against the machine's best */
	HOIST_CHECK_COUNT          /* not a check */
};

/* "page cache", "host memory", "gpu memory", "file system", "memlock", "gpu driver",
 * "huge pages", "numa", "storage speed"; NULL for none. */
const char *hoist_check_name(enum hoist_check check);

enum hoist_verdict {
	HOIST_VERDICT_OK = 0,         /* measured: nothing wrong */
	HOIST_VERDICT_NOTE = 1,       /* worth knowing, neither slow nor failing */
	HOIST_VERDICT_SLOW = 2,       /* would make the load slow */
	HOIST_VERDICT_FAIL = 3,       /* would make the load fail */
	HOIST_VERDICT_UNMEASURED = 4, /* could not be measured; the evidence says why */
};

/* "ok", "note", "slow", "fail", "unmeasured"; NULL for none. */
const char *hoist_verdict_name(enum hoist_verdict verdict);

struct hoist_finding {
	enum hoist_check check;
	enum hoist_verdict verdict;
	const char *summary;  /* one line */
	const char *evidence; /* what was measured, with its figures and their source */
	const char *remedy;   /* what to do about it; "" when nothing is to be done */
};

struct hoist_doctor;

/* Examines loading the checkpoint at path with opt (its device, device_map,
 * max_memory, dtype, disk, host_memory, direct and sim settings, as a load would
 * take them): one finding per check, in enum order, each from measurements made now
 * (mincore, statfs, /proc and /sys, the driver, short O_DIRECT reads of the shards)
 * or kept by hoist bench, never assumed. Reads no more than a few hundred MiB of the
 * shards, with O_DIRECT, so the page cache is left as it was found. opt may be NULL.
 * Errors: HOIST_ERR_IO, HOIST_ERR_FORMAT (the checkpoint cannot be opened),
 * HOIST_ERR_INVALID (a bad option), HOIST_ERR_NOMEM. A plan that does not fit is a
 * finding, not an error. */
enum hoist_status hoist_doctor_run(const char *path, const struct hoist_options *opt,
                                   struct hoist_doctor **out);
void hoist_doctor_free(struct hoist_doctor *d);

size_t hoist_doctor_finding_count(const struct hoist_doctor *d);
const struct hoist_finding *hoist_doctor_finding(const struct hoist_doctor *d, size_t i);

#ifdef __cplusplus
}
#endif
#endif /* HOIST_H */
