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
 *     hoist_plan_create()       tensor -> device, from metadata alone
 *     hoist_model_load()        one arena per device, bytes streamed by file range
 *     hoist_model_tensor()      borrowed views: device, address, dtype, shape
 *
 * Conventions (see STYLE.md):
 *  - Every call that can fail returns enum hoist_status; results come through
 *    out-parameters. On failure, hoist_errmsg() says what went wrong, naming the
 *    file, the tensor and the byte offset where they are known.
 *  - Whoever opens, closes. Destructors accept NULL. Strings and views returned
 *    by a handle are borrowed: valid until that handle is closed.
 *  - A handle is used by one thread at a time. Callbacks run on the calling thread.
 *  - struct hoist_options: zero means default for every field; pass NULL for all
 *    defaults. Fields are only ever appended.
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
#define HOIST_VERSION_MINOR 1
#define HOIST_VERSION_PATCH 0
#define HOIST_VERSION_STRING "0.1.0"

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
	HOIST_ERR_DEVICE = 6,    /* the device or its driver failed (message names the driver error) */
	HOIST_ERR_CANCELLED = 7, /* the progress callback asked to stop */
	HOIST_ERR_NO_SPACE = 8,  /* the tensors do not fit the devices' budgets */
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

/* ------------------------------------------------------------------------------ */
/* Devices.                                                                        */

enum hoist_device_kind {
	HOIST_DEVICE_CPU = 0,  /* host memory */
	HOIST_DEVICE_CUDA = 1, /* an NVIDIA GPU through the CUDA driver */
	HOIST_DEVICE_SIM = 2,  /* the simulated accelerator (tests; never a fallback) */
	HOIST_DEVICE_DISK = 3, /* left in its file; fetched on demand */
};

struct hoist_device {
	enum hoist_device_kind kind;
	int index; /* GPU ordinal for cuda and sim; 0 for cpu and disk */
};

/* Parses "cpu", "disk", "cuda:N", "sim:N". A bare "cuda" or "sim" gives index -1,
 * meaning every device of that kind. Errors: HOIST_ERR_INVALID. */
enum hoist_status hoist_device_parse(const char *text, struct hoist_device *out);
/* Writes "cuda:0", "cpu", ... into buf (always NUL-terminated); returns buf. */
char *hoist_device_format(struct hoist_device device, char *buf, size_t size);

/* Parses a byte count: "20GiB", "1.5GB", "4096", "512MiB" (B, KB/MB/GB/TB decimal,
 * KiB/MiB/GiB/TiB binary, case-insensitive). Errors: HOIST_ERR_INVALID naming the text. */
enum hoist_status hoist_bytes_parse(const char *text, uint64_t *out);

/* ------------------------------------------------------------------------------ */
/* Options: zero means default for every field.                                    */

enum hoist_host_memory {
	HOIST_HOST_DEFAULT = 0,  /* pageable for cpu targets */
	HOIST_HOST_PAGEABLE = 1, /* malloc'd arena */
	HOIST_HOST_PINNED = 2,   /* page-locked arena (through the CUDA driver when present) */
	HOIST_HOST_MMAP = 3,     /* zero-copy read-only views of the mapped files; no conversion */
};

/* Injectable faults of the sim backend (tests). */
enum hoist_sim_fault {
	HOIST_SIM_FAULT_NONE = 0,
	HOIST_SIM_FAULT_ALLOC = 1, /* the arena allocation fails */
	HOIST_SIM_FAULT_COPY = 2,  /* a copy fails once sim_fault_after bytes have been copied */
};

/* Progress, reported on the calling thread at least every 100 ms during long work. */
struct hoist_progress {
	const char *phase;    /* "open", "plan", "allocate", "stream", "finalize" */
	uint64_t bytes_done;  /* bytes landed on their devices so far */
	uint64_t bytes_total; /* bytes to move in this load */
	double seconds;       /* since the phase began */
};

/* Return non-zero to cancel: the call then frees everything it made and returns
 * HOIST_ERR_CANCELLED. */
typedef int (*hoist_progress_fn)(const struct hoist_progress *progress, void *arg);

struct hoist_options {
	/* Target: "cuda:0", "cuda" (every GPU), "cpu", "sim:0", "sim". NULL: every GPU
	 * if a CUDA driver and GPU are present, else cpu (with a notice). */
	const char *device;
	/* Placement strategy: NULL or "auto", "balanced", "sequential", or the path of a
	 * JSON file mapping module / tensor-name prefixes to devices (accelerate's form).
	 * Unset with a single-device target, every tensor goes to that device. */
	const char *device_map;
	/* Budgets: "0=20GiB,1=20GiB,cpu=64GiB,disk=100GB". Bare numbers are GPU ordinals
	 * of the target's kind. Units B, KB/MB/GB/TB (decimal), KiB/MiB/GiB/TiB. */
	const char *max_memory;
	enum hoist_dtype dtype;   /* convert floating tensors to this on load; 0 keeps */
	unsigned threads;         /* reader threads; 0: min(16, 2 x cores) */
	uint64_t chunk_bytes;     /* read unit; 0: 32 MiB */
	uint64_t staging_bytes;   /* pinned staging ring in total; 0: 256 MiB */
	int direct;               /* non-zero: O_DIRECT reads (cold storage) */
	enum hoist_host_memory host_memory;
	hoist_progress_fn progress;
	void *progress_arg;
	int verbose;              /* non-zero: notices and live phase lines on stderr */
	/* sim backend (tests): devices, capacity each, bandwidth cap, faults. */
	unsigned sim_devices;       /* 0: 1 */
	uint64_t sim_capacity;      /* bytes per device; 0: 4 GiB */
	double sim_bytes_per_sec;   /* copy bandwidth cap; 0: none */
	enum hoist_sim_fault sim_fault;
	uint64_t sim_fault_after;   /* bytes copied before HOIST_SIM_FAULT_COPY strikes */
	int allow_disk;             /* planning: < 0 forbids disk placement; 0 or > 0 allows */
};

/* ------------------------------------------------------------------------------ */
/* Checkpoints: metadata only. No tensor bytes are read by these calls.           */

struct hoist_checkpoint;

struct hoist_tensor_info {
	const char *name;
	enum hoist_dtype dtype;
	unsigned ndim;          /* 0 for a scalar */
	const int64_t *shape;   /* ndim entries */
	uint64_t numel;
	uint32_t shard;         /* index into the checkpoint's shards */
	uint64_t offset;        /* absolute byte offset of the data in the shard file */
	uint64_t nbytes;
};

/* Opens a checkpoint: a .safetensors file; a directory holding model.safetensors or
 * model.safetensors.index.json and its shards; or an index file. Reads and validates
 * every shard's header (and config.json when present); the headers of a checkpoint
 * of many tensors are read on a few threads of its own, joined before it returns.
 * opt may be NULL.
 * Errors: HOIST_ERR_IO (missing or unreadable file), HOIST_ERR_FORMAT (a header or
 * index breaks the format; the message names the file, the tensor and the rule),
 * HOIST_ERR_NOMEM, HOIST_ERR_INVALID. */
enum hoist_status hoist_checkpoint_open(const char *path, const struct hoist_options *opt,
					struct hoist_checkpoint **out);
void hoist_checkpoint_close(struct hoist_checkpoint *ckpt);

size_t hoist_checkpoint_shard_count(const struct hoist_checkpoint *ckpt);
/* The shard's path as opened (directory joined with the index's file name). */
const char *hoist_checkpoint_shard_path(const struct hoist_checkpoint *ckpt, size_t shard);
uint64_t hoist_checkpoint_shard_size(const struct hoist_checkpoint *ckpt, size_t shard);

/* Tensors are numbered 0..count-1 in file order: by shard, then by data offset. */
size_t hoist_checkpoint_tensor_count(const struct hoist_checkpoint *ckpt);
const struct hoist_tensor_info *hoist_checkpoint_tensor(const struct hoist_checkpoint *ckpt,
							 size_t index);
/* Finds a tensor by exact name. Errors: HOIST_ERR_INVALID if absent (message names it). */
enum hoist_status hoist_checkpoint_find(const struct hoist_checkpoint *ckpt, const char *name,
					size_t *index);
uint64_t hoist_checkpoint_total_bytes(const struct hoist_checkpoint *ckpt);

/* The `__metadata__` entries, merged over the shards (first shard wins), sorted by key. */
size_t hoist_checkpoint_metadata_count(const struct hoist_checkpoint *ckpt);
void hoist_checkpoint_metadata(const struct hoist_checkpoint *ckpt, size_t i, const char **key,
			       const char **value);

/* From config.json when present, else NULL: "architectures"[0] and "torch_dtype"
 * (or "dtype"). */
const char *hoist_checkpoint_architecture(const struct hoist_checkpoint *ckpt);
const char *hoist_checkpoint_config_dtype(const struct hoist_checkpoint *ckpt);

/* Things worth saying that are not errors (e.g. the index's total_size disagrees
 * with the shards). */
size_t hoist_checkpoint_warning_count(const struct hoist_checkpoint *ckpt);
const char *hoist_checkpoint_warning(const struct hoist_checkpoint *ckpt, size_t i);

/* The length of name's layer-group prefix: the shortest prefix ending in ".<N>."
 * with N all digits ("model.layers.12." of "model.layers.12.mlp.up_proj.weight",
 * "visual.blocks.3." of "visual.blocks.3.attn.qkv.bias"); 0 if it has none. */
size_t hoist_layer_group_prefix(const char *name);

/* ------------------------------------------------------------------------------ */
/* Plans: where each tensor goes, from metadata alone.                            */

struct hoist_plan;

/* Makes a plan for ckpt under opt (device, device_map, max_memory, dtype, allow_disk).
 * Deterministic: the same inputs give the same plan. Without opt->device_map and
 * with a single target device, everything goes to that device.
 * Errors: HOIST_ERR_INVALID (a bad option or map file), HOIST_ERR_NO_DEVICE (a GPU
 * was asked for explicitly and none is present), HOIST_ERR_NO_SPACE (the message
 * lists what did not fit and by how much), HOIST_ERR_NOMEM. */
enum hoist_status hoist_plan_create(const struct hoist_checkpoint *ckpt,
				    const struct hoist_options *opt, struct hoist_plan **out);
void hoist_plan_free(struct hoist_plan *plan);

/* Devices the plan uses or budgets for, in a fixed order (GPUs by ordinal, cpu, disk). */
size_t hoist_plan_device_count(const struct hoist_plan *plan);
/* budget is UINT64_MAX where unlimited. */
void hoist_plan_device(const struct hoist_plan *plan, size_t i, struct hoist_device *device,
		       uint64_t *budget, uint64_t *bytes);
/* Where tensor `index` (checkpoint numbering) goes, and its offset in that device's
 * arena (for disk: its offset in its file). */
struct hoist_device hoist_plan_tensor_device(const struct hoist_plan *plan, size_t index);
uint64_t hoist_plan_tensor_offset(const struct hoist_plan *plan, size_t index);

/* Human-readable plan (groups -> device, bytes against budgets, what spilled and
 * why, predicted load time), and the same as one JSON object. */
enum hoist_status hoist_plan_print(const struct hoist_plan *plan, FILE *out);
enum hoist_status hoist_plan_print_json(const struct hoist_plan *plan, FILE *out);

/* Planning in detail (plan.c):
 *  - The plan borrows ckpt: the checkpoint must outlive the plan.
 *  - Units: a layer group (hoist_layer_group_prefix) or else a module (the name
 *    without its last component) is never split by auto, balanced or sequential;
 *    units are ordered by name, numbers numerically. An explicit map places each
 *    tensor by the longest key covering it, as the file says.
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
 *  - auto = balanced: spread over the GPUs in proportion to their budgets when the
 *    model fits them, else fill GPUs by ordinal, then cpu, then disk. sequential: fill
 *    in that order. No room is kept for executing offloaded layers (accelerate keeps
 *    the largest layer free on the first GPU); lower the budget for that.
 *  - Map files: {"prefix": device}, device a GPU ordinal (number or digit string),
 *    "cpu", "disk", "cuda:N" or "sim:N"; "" covers everything; a key that covers no
 *    tensor is retried under transformers' renames ("model.language_model." <->
 *    "model.", "model.visual." <-> "visual.", ...) and otherwise ignored (printed).
 *    A tensor no key covers is HOIST_ERR_INVALID. */

/* A one-line notice about the plan (e.g. "no GPU (...): every tensor planned for cpu"),
 * or NULL. Borrowed from the plan. */
const char *hoist_plan_notice(const struct hoist_plan *plan);

/* Predicted seconds to load by this plan, from assumed bandwidths (storage 2 GB/s
 * cold, page cache 40 GB/s warm, host->GPU copy 55 GB/s, as measured on one H200
 * machine; sim: its bandwidth cap when set): cold non-zero for a cold page cache.
 * Disk-placed tensors cost nothing. -1 for a NULL plan. */
double hoist_plan_predicted_seconds(const struct hoist_plan *plan, int cold);

/* ------------------------------------------------------------------------------ */
/* Loading.                                                                        */

struct hoist_model;

/* A loaded tensor: borrowed from the model. data is a device address for cuda and
 * sim (not dereferenceable on the host), a host address for cpu, and NULL for disk. */
struct hoist_tensor {
	const char *name;
	struct hoist_device device;
	void *data;
	enum hoist_dtype dtype; /* after conversion */
	unsigned ndim;
	const int64_t *shape;
	uint64_t nbytes;        /* after conversion */
};

/* Loads ckpt by plan (NULL: a plan made from opt). Either every tensor lands and
 * HOIST_OK is returned, or nothing stays allocated and an error is returned.
 * The checkpoint must outlive the model.
 * Errors: any of the above; HOIST_ERR_INVALID when plan was made for another
 * checkpoint or another dtype than opt->dtype; HOIST_ERR_DEVICE names the driver error,
 * HOIST_ERR_CANCELLED when the progress callback asked to stop. */
enum hoist_status hoist_model_load(const struct hoist_checkpoint *ckpt,
				   const struct hoist_plan *plan, const struct hoist_options *opt,
				   struct hoist_model **out);
void hoist_model_free(struct hoist_model *model);

size_t hoist_model_tensor_count(const struct hoist_model *model);
/* Same numbering as the checkpoint. */
void hoist_model_tensor(const struct hoist_model *model, size_t index, struct hoist_tensor *out);

/* Copies tensor `index` (as loaded, after conversion) into host memory dst of size
 * bytes (must equal its nbytes), from whatever device holds it; disk tensors are
 * read from their file. Errors: HOIST_ERR_INVALID, HOIST_ERR_IO, HOIST_ERR_DEVICE. */
enum hoist_status hoist_model_read(const struct hoist_model *model, size_t index, void *dst,
				   uint64_t size);

/* Fetches tensor `index` onto `device` now, e.g. a disk-placed tensor onto sim:0 or
 * cuda:0, allocating a fresh buffer there; *out describes it and stays valid until
 * the model is freed. Errors as hoist_model_read, plus HOIST_ERR_NO_SPACE. */
enum hoist_status hoist_model_fetch(struct hoist_model *model, size_t index,
				    struct hoist_device device, struct hoist_tensor *out);

/* The timing report: phases with seconds and GB/s, the link that bounded the stream
 * phase, bytes per device. */
enum hoist_status hoist_model_report_print(const struct hoist_model *model, FILE *out);
enum hoist_status hoist_model_report_json(const struct hoist_model *model, FILE *out);

/* Seconds spent in a phase ("open" is measured by the caller and may be set with
 * hoist_model_set_open_seconds so the report covers it); -1 for an unknown phase. */
double hoist_model_phase_seconds(const struct hoist_model *model, const char *phase);
void hoist_model_set_open_seconds(struct hoist_model *model, double seconds);

/* ------------------------------------------------------------------------------ */
/* Synthetic checkpoints (demos, tests, benchmarks).                              */

struct hoist_synth_options {
	/* Layout source: a config.json (Qwen2 / Llama-style text model) or a
	 * shard-headers.json (file name -> {header, file_size}); NULL: a built-in
	 * small Qwen2-style layout. */
	const char *source;
	double scale;             /* 0 or 1: as given; else shrink every tensor's first
				   * dimension by this factor (0 < scale < 1) */
	unsigned layers;          /* config sources: override num_hidden_layers; 0 keeps */
	uint64_t shard_bytes;     /* target shard size; 0: as the source, or 1 GB */
	uint64_t seed;            /* content seed; 0 is a valid seed */
	int verbose;
};

/* Writes model-0000K-of-0000N.safetensors, model.safetensors.index.json and
 * config.json into dir (created if missing). Every tensor's bytes are
 * hoist_synth_fill(seed, name, offset-in-tensor), so a load can be verified.
 * Errors: HOIST_ERR_INVALID, HOIST_ERR_IO, HOIST_ERR_FORMAT (a bad source). */
enum hoist_status hoist_synth_write(const char *dir, const struct hoist_synth_options *opt);

/* The synthetic content: fills buf with bytes [offset, offset + size) of the named
 * tensor's data for this seed. */
void hoist_synth_fill(uint64_t seed, const char *name, uint64_t offset, void *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif /* HOIST_H */
