/* _hoist.c - hoist._hoist, the CPython extension over libhoist, on the stable ABI.
 *
 * Built against the limited API of CPython 3.9 (Py_LIMITED_API 0x03090000), so one
 * build serves every later interpreter. The package hoist (hoist/__init__.py) wraps
 * these objects; this module only translates:
 *
 *   open(path) -> Checkpoint      hoist_checkpoint_open; metadata as Python values
 *   Checkpoint.plan(...) -> Plan  hoist_plan_create, with the caller's units and ties
 *   Plan.load(...) -> Model       hoist_model_load, the GIL released; progress, Ctrl-C
 *                                 and the landed callback on the calling thread
 *   Model.tensor(i) -> Tensor     a loaded tensor with __dlpack__ / __dlpack_device__
 *
 * Lifetime: a Tensor holds a reference on the C model (hoist_model_retain), and the
 * capsules it hands out hold their own (dlpack.c), so the model's memory lives
 * until the Model and the last tensor made from it are gone, in whatever order and
 * on whatever thread a consumer drops them. A Tensor also keeps its Checkpoint
 * object, which disk-placed tensors are read through.
 *
 * Errors raise the package's hoist.Error subclasses (registered by the package with
 * _set_errors), carrying hoist_errmsg() and the status. */
#ifndef Py_LIMITED_API
#define Py_LIMITED_API 0x03090000
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "hoist.h"
#include "hoist_dlpack.h"
#include "hoist_testing.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the package checks at import: a package and an extension from different
 * sources fail with a message that says what to rebuild. */
#define HOIST_PY_ABI 1

static PyObject *error_classes; /* {status: class}, set by the package */

static PyObject *raise_status(enum hoist_status st)
{
	PyObject *key = PyLong_FromLong((long)st);
	PyObject *cls = key && error_classes ? PyDict_GetItem(error_classes, key) : NULL;
	Py_XDECREF(key);
	if (!cls)
		cls = PyExc_RuntimeError;
	PyObject *exc = PyObject_CallFunction(cls, "s", hoist_errmsg());
	if (exc) {
		PyObject *code = PyLong_FromLong((long)st);
		if (code) {
			PyObject_SetAttrString(exc, "status", code);
			Py_DECREF(code);
		}
		/* cls may be a factory that picks the class from the message */
		PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
		Py_DECREF(exc);
	}
	return NULL;
}

/* UTF-8 of a str (or NULL for None), kept alive by *keep (a list). */
static int utf8(PyObject *s, PyObject *keep, const char **out)
{
	*out = NULL;
	if (!s || s == Py_None)
		return 0;
	PyObject *b = PyUnicode_AsUTF8String(s);
	if (!b)
		return -1;
	int rc = PyList_Append(keep, b);
	Py_DECREF(b);
	if (rc < 0)
		return -1;
	*out = PyBytes_AsString(b);
	return *out ? 0 : -1;
}

static PyObject *device_str(struct hoist_device d)
{
	char buf[32];
	return PyUnicode_FromString(hoist_device_format(d, buf, sizeof buf));
}

static PyObject *shape_tuple(unsigned ndim, const int64_t *shape)
{
	PyObject *t = PyTuple_New((Py_ssize_t)ndim);
	for (unsigned i = 0; t && i < ndim; i++) {
		PyObject *v = PyLong_FromLongLong(shape[i]);
		if (!v) {
			Py_DECREF(t);
			return NULL;
		}
		PyTuple_SetItem(t, (Py_ssize_t)i, v);
	}
	return t;
}

static void dealloc_heap(PyObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);
	freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);
	f(self);
	Py_DECREF(tp);
}

/* ---- Checkpoint ------------------------------------------------------------------ */

typedef struct {
	PyObject_HEAD struct hoist_checkpoint *ckpt;
	PyObject *names;  /* tuple of the tensor names, in file order */
	PyObject *shapes; /* tuple of their shape tuples */
} CheckpointObject;

/* The dtypes' names as Python strings, made once (every tensor's dtype is one). */
static PyObject *dtype_strings[HOIST_DTYPE_COUNT];

static PyObject *dtype_str(enum hoist_dtype d)
{
	PyObject *s = (unsigned)d < HOIST_DTYPE_COUNT ? dtype_strings[d] : NULL;
	if (!s) {
		PyErr_SetString(PyExc_ValueError, "not a dtype");
		return NULL;
	}
	Py_INCREF(s);
	return s;
}

static PyTypeObject *CheckpointType, *PlanType, *ModelType, *TensorType;

static void Checkpoint_dealloc(PyObject *self)
{
	CheckpointObject *c = (CheckpointObject *)self;
	Py_XDECREF(c->names);
	Py_XDECREF(c->shapes);
	hoist_checkpoint_close(c->ckpt);
	dealloc_heap(self);
}

static int need_open(CheckpointObject *c)
{
	if (c->ckpt)
		return 0;
	PyErr_SetString(PyExc_ValueError, "the checkpoint is closed");
	return -1;
}

static PyObject *Checkpoint_tensors(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	CheckpointObject *c = (CheckpointObject *)self;
	if (need_open(c) < 0)
		return NULL;
	size_t n = hoist_checkpoint_tensor_count(c->ckpt);
	size_t nshards = hoist_checkpoint_shard_count(c->ckpt);
	PyObject *paths = PyTuple_New((Py_ssize_t)nshards);
	for (size_t i = 0; paths && i < nshards; i++) {
		PyObject *p = PyUnicode_FromString(hoist_checkpoint_shard(c->ckpt, i)->path);
		if (!p) {
			Py_CLEAR(paths);
			break;
		}
		PyTuple_SetItem(paths, (Py_ssize_t)i, p);
	}
	PyObject *list = paths ? PyList_New((Py_ssize_t)n) : NULL;
	for (size_t i = 0; list && i < n; i++) {
		const struct hoist_tensor_info *t = hoist_checkpoint_tensor(c->ckpt, i);
		PyObject *item = Py_BuildValue(
		        "(ONOOKK)", PyTuple_GetItem(c->names, (Py_ssize_t)i), dtype_str(t->dtype),
		        PyTuple_GetItem(c->shapes, (Py_ssize_t)i),
		        PyTuple_GetItem(paths, (Py_ssize_t)t->shard), (unsigned long long)t->offset,
		        (unsigned long long)t->nbytes);
		if (!item) {
			Py_CLEAR(list);
			break;
		}
		PyList_SetItem(list, (Py_ssize_t)i, item);
	}
	Py_XDECREF(paths);
	return list;
}

static PyObject *Checkpoint_names(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	CheckpointObject *c = (CheckpointObject *)self;
	Py_INCREF(c->names);
	return c->names;
}

static PyObject *Checkpoint_info(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	CheckpointObject *c = (CheckpointObject *)self;
	if (need_open(c) < 0)
		return NULL;
	PyObject *meta = PyDict_New(), *shards = PyList_New(0), *warnings = PyList_New(0);
	PyObject *out = NULL;
	if (!meta || !shards || !warnings)
		goto out;
	for (size_t i = 0; i < hoist_checkpoint_metadata_count(c->ckpt); i++) {
		const struct hoist_metadata *m = hoist_checkpoint_metadata(c->ckpt, i);
		PyObject *v = PyUnicode_FromString(m->value);
		if (!v || PyDict_SetItemString(meta, m->key, v) < 0) {
			Py_XDECREF(v);
			goto out;
		}
		Py_DECREF(v);
	}
	for (size_t i = 0; i < hoist_checkpoint_shard_count(c->ckpt); i++) {
		const struct hoist_shard *s = hoist_checkpoint_shard(c->ckpt, i);
		PyObject *v = Py_BuildValue("(sK)", s->path, (unsigned long long)s->size);
		if (!v || PyList_Append(shards, v) < 0) {
			Py_XDECREF(v);
			goto out;
		}
		Py_DECREF(v);
	}
	for (size_t i = 0; i < hoist_checkpoint_warning_count(c->ckpt); i++) {
		PyObject *v = PyUnicode_FromString(hoist_checkpoint_warning(c->ckpt, i));
		if (!v || PyList_Append(warnings, v) < 0) {
			Py_XDECREF(v);
			goto out;
		}
		Py_DECREF(v);
	}
	out = Py_BuildValue("{s:O,s:O,s:O,s:z,s:z,s:K,s:d}", "metadata", meta, "shards", shards,
	                    "warnings", warnings, "architecture",
	                    hoist_checkpoint_architecture(c->ckpt), "config_dtype",
	                    hoist_checkpoint_config_dtype(c->ckpt), "total_bytes",
	                    (unsigned long long)hoist_checkpoint_total_bytes(c->ckpt),
	                    "open_seconds", hoist_checkpoint_open_seconds(c->ckpt));
out:
	Py_XDECREF(meta);
	Py_XDECREF(shards);
	Py_XDECREF(warnings);
	return out;
}

/* ---- options from keyword arguments ------------------------------------------------- */

struct opts {
	struct hoist_options opt;
	struct hoist_sim_options sim;
	struct hoist_plan_request req;
	struct hoist_plan_unit *units;
	const char **prefixes, **skip;
	size_t *tie_units, *tie_offsets;
	PyObject *keep; /* the UTF-8 bytes the strings point into */
};

static void opts_free(struct opts *o)
{
	free(o->units);
	free(o->prefixes);
	free(o->skip);
	free(o->tie_units);
	free(o->tie_offsets);
	Py_XDECREF(o->keep);
}

static int host_memory(PyObject *v, enum hoist_host_memory *out)
{
	if (!v || v == Py_None) {
		*out = HOIST_HOST_DEFAULT;
		return 0;
	}
	static const char *names[] = {"default", "pageable", "pinned", "mmap"};
	for (int i = 0; i < 4; i++) {
		PyObject *n = PyUnicode_FromString(names[i]);
		int eq = n ? PyObject_RichCompareBool(v, n, Py_EQ) : -1;
		Py_XDECREF(n);
		if (eq < 0)
			return -1;
		if (eq) {
			*out = (enum hoist_host_memory)i;
			return 0;
		}
	}
	PyErr_SetString(PyExc_ValueError,
	                "host_memory: expected \"pageable\", \"pinned\" or \"mmap\"");
	return -1;
}

/* The caller's units: [(name, [prefix, ...], device or None)], ties [[unit, ...]],
 * skip [name]. */
static int request_from(struct opts *o, PyObject *units, PyObject *ties, PyObject *skip)
{
	Py_ssize_t nu = PySequence_Size(units);
	if (nu < 0)
		return -1;
	size_t np = 0;
	for (Py_ssize_t i = 0; i < nu; i++) {
		PyObject *u = PySequence_GetItem(units, i);
		PyObject *pf = u ? PySequence_GetItem(u, 1) : NULL;
		Py_ssize_t n = pf ? PySequence_Size(pf) : -1;
		Py_XDECREF(pf);
		Py_XDECREF(u);
		if (n < 0)
			return -1;
		np += (size_t)n;
	}
	o->units = calloc((size_t)nu + 1, sizeof *o->units);
	o->prefixes = calloc(np + 1, sizeof *o->prefixes);
	if (!o->units || !o->prefixes) {
		PyErr_NoMemory();
		return -1;
	}
	size_t k = 0;
	for (Py_ssize_t i = 0; i < nu; i++) {
		PyObject *u = PySequence_GetItem(units, i);
		PyObject *name = u ? PySequence_GetItem(u, 0) : NULL;
		PyObject *pf = name ? PySequence_GetItem(u, 1) : NULL;
		PyObject *dev = pf && PySequence_Size(u) > 2 ? PySequence_GetItem(u, 2) : NULL;
		int rc = pf ? 0 : -1;
		struct hoist_plan_unit *cu = &o->units[i];
		if (rc == 0)
			rc = utf8(name, o->keep, &cu->name);
		if (rc == 0 && dev)
			rc = utf8(dev, o->keep, &cu->device);
		cu->prefixes = &o->prefixes[k];
		Py_ssize_t n = rc == 0 ? PySequence_Size(pf) : -1;
		for (Py_ssize_t j = 0; rc == 0 && j < n; j++) {
			PyObject *p = PySequence_GetItem(pf, j);
			rc = p ? utf8(p, o->keep, &o->prefixes[k++]) : -1;
			Py_XDECREF(p);
		}
		cu->prefix_count = n > 0 ? (size_t)n : 0;
		Py_XDECREF(dev);
		Py_XDECREF(pf);
		Py_XDECREF(name);
		Py_XDECREF(u);
		if (rc < 0)
			return -1;
	}
	o->req.units = o->units;
	o->req.unit_count = (size_t)nu;
	if (ties && ties != Py_None) {
		Py_ssize_t ng = PySequence_Size(ties);
		if (ng < 0)
			return -1;
		size_t total = 0;
		for (Py_ssize_t g = 0; g < ng; g++) {
			PyObject *grp = PySequence_GetItem(ties, g);
			Py_ssize_t n = grp ? PySequence_Size(grp) : -1;
			Py_XDECREF(grp);
			if (n < 0)
				return -1;
			total += (size_t)n;
		}
		o->tie_units = calloc(total + 1, sizeof *o->tie_units);
		o->tie_offsets = calloc((size_t)ng + 1, sizeof *o->tie_offsets);
		if (!o->tie_units || !o->tie_offsets) {
			PyErr_NoMemory();
			return -1;
		}
		size_t w = 0;
		for (Py_ssize_t g = 0; g < ng; g++) {
			PyObject *grp = PySequence_GetItem(ties, g);
			Py_ssize_t n = PySequence_Size(grp);
			for (Py_ssize_t j = 0; j < n; j++) {
				PyObject *v = PySequence_GetItem(grp, j);
				size_t x = v ? PyLong_AsSize_t(v) : (size_t)-1;
				Py_XDECREF(v);
				if (PyErr_Occurred()) {
					Py_DECREF(grp);
					return -1;
				}
				o->tie_units[w++] = x;
			}
			Py_DECREF(grp);
			o->tie_offsets[g + 1] = w;
		}
		o->req.tie_units = o->tie_units;
		o->req.tie_offsets = o->tie_offsets;
		o->req.tie_count = (size_t)ng;
	}
	if (skip && skip != Py_None) {
		Py_ssize_t ns = PySequence_Size(skip);
		if (ns < 0)
			return -1;
		o->skip = calloc((size_t)ns + 1, sizeof *o->skip);
		if (!o->skip) {
			PyErr_NoMemory();
			return -1;
		}
		for (Py_ssize_t i = 0; i < ns; i++) {
			PyObject *v = PySequence_GetItem(skip, i);
			int rc = v ? utf8(v, o->keep, &o->skip[i]) : -1;
			Py_XDECREF(v);
			if (rc < 0)
				return -1;
		}
		o->req.skip = o->skip;
		o->req.skip_count = (size_t)ns;
	}
	o->opt.request = &o->req;
	return 0;
}

/* ---- Plan ------------------------------------------------------------------------ */

typedef struct {
	PyObject_HEAD struct hoist_plan *plan;
	PyObject *checkpoint;
	struct hoist_sim_options sim; /* the load needs the same simulated devices */
	enum hoist_host_memory host_memory;
} PlanObject;

static void Plan_dealloc(PyObject *self)
{
	PlanObject *p = (PlanObject *)self;
	hoist_plan_free(p->plan);
	Py_XDECREF(p->checkpoint);
	dealloc_heap(self);
}

static PyObject *Checkpoint_plan(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *names[] = {
	        "device",       "device_map",   "max_memory",   "dtype",         "no_disk",
	        "host_memory",  "offload_room", "units",        "ties",          "skip",
	        "module_order", "sim_devices",  "sim_capacity", "sim_bandwidth", NULL};
	CheckpointObject *c = (CheckpointObject *)self;
	PyObject *device = NULL, *device_map = NULL, *max_memory = NULL, *dtype = NULL;
	PyObject *hm = NULL, *units = NULL, *ties = NULL, *skip = NULL, *order = NULL;
	int no_disk = 0, room = 0;
	unsigned sim_devices = 0;
	unsigned long long sim_capacity = 0;
	double sim_bandwidth = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|OOOOpOiOOOOIKd", names, &device, &device_map,
	                                 &max_memory, &dtype, &no_disk, &hm, &room, &units, &ties,
	                                 &skip, &order, &sim_devices, &sim_capacity,
	                                 &sim_bandwidth))
		return NULL;
	if (need_open(c) < 0)
		return NULL;
	struct opts o;
	memset(&o, 0, sizeof o);
	PlanObject *p = NULL;
	const char *dt = NULL;
	if (!(o.keep = PyList_New(0)) || utf8(device, o.keep, &o.opt.device) < 0 ||
	    utf8(device_map, o.keep, &o.opt.device_map) < 0 ||
	    utf8(max_memory, o.keep, &o.opt.max_memory) < 0 || utf8(dtype, o.keep, &dt) < 0 ||
	    utf8(order, o.keep, &o.opt.module_order) < 0 || host_memory(hm, &o.opt.host_memory) < 0)
		goto out;
	if (dt) {
		enum hoist_status st = hoist_dtype_parse(dt, &o.opt.dtype);
		if (st != HOIST_OK) {
			raise_status(st);
			goto out;
		}
	}
	if (units && units != Py_None && request_from(&o, units, ties, skip) < 0)
		goto out;
	o.opt.disk = no_disk ? HOIST_DISK_FORBIDDEN : HOIST_DISK_ALLOWED;
	o.opt.offload_room = (enum hoist_offload_room)room;
	o.sim.devices = sim_devices;
	o.sim.capacity = sim_capacity;
	o.sim.bytes_per_sec = sim_bandwidth;
	o.opt.sim = &o.sim;
	p = PyObject_New(PlanObject, PlanType);
	if (!p)
		goto out;
	p->plan = NULL;
	p->checkpoint = NULL;
	p->sim = o.sim;
	p->host_memory = o.opt.host_memory;
	enum hoist_status st;
	Py_BEGIN_ALLOW_THREADS st = hoist_plan_create(c->ckpt, &o.opt, &p->plan);
	Py_END_ALLOW_THREADS if (st != HOIST_OK)
	{
		Py_DECREF(p);
		p = NULL;
		raise_status(st);
		goto out;
	}
	Py_INCREF(self);
	p->checkpoint = self;
out:
	opts_free(&o);
	return (PyObject *)p;
}

static PyObject *Plan_devices(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	const struct hoist_plan *plan = ((PlanObject *)self)->plan;
	size_t n = hoist_plan_device_count(plan);
	PyObject *list = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; list && i < n; i++) {
		const struct hoist_plan_device *d = hoist_plan_device(plan, i);
		PyObject *name = device_str(d->device);
		PyObject *budget = d->budget == UINT64_MAX ? (Py_INCREF(Py_None), Py_None)
		                                           : PyLong_FromUnsignedLongLong(d->budget);
		PyObject *item = name && budget
		                         ? Py_BuildValue("(NNKns)", name, budget,
		                                         (unsigned long long)d->bytes,
		                                         (Py_ssize_t)d->tensors, d->budget_source)
		                         : NULL;
		if (!item) {
			Py_DECREF(list);
			return NULL;
		}
		PyList_SetItem(list, (Py_ssize_t)i, item);
	}
	return list;
}

static PyObject *Plan_units(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	const struct hoist_plan *plan = ((PlanObject *)self)->plan;
	size_t n = hoist_plan_unit_count(plan);
	PyObject *list = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; list && i < n; i++) {
		const struct hoist_plan_unit_info *u = hoist_plan_unit(plan, i);
		PyObject *dev = device_str(u->device);
		PyObject *item =
		        dev ? Py_BuildValue("(sNKnO)", u->name, dev, (unsigned long long)u->bytes,
		                            (Py_ssize_t)u->tensors, u->tied ? Py_True : Py_False)
		            : NULL;
		if (!item) {
			Py_DECREF(list);
			return NULL;
		}
		PyList_SetItem(list, (Py_ssize_t)i, item);
	}
	return list;
}

static PyObject *Plan_placements(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	const struct hoist_plan *plan = ((PlanObject *)self)->plan;
	size_t n = hoist_plan_tensor_count(plan);
	PyObject *list = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; list && i < n; i++) {
		PyObject *d = device_str(hoist_plan_tensor(plan, i)->device);
		if (!d) {
			Py_DECREF(list);
			return NULL;
		}
		PyList_SetItem(list, (Py_ssize_t)i, d);
	}
	return list;
}

/* The plan as text or JSON, through a memory stream. */
static PyObject *Plan_print(PyObject *self, PyObject *args)
{
	int json = 0;
	if (!PyArg_ParseTuple(args, "|p", &json))
		return NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return PyErr_NoMemory();
	const struct hoist_plan *plan = ((PlanObject *)self)->plan;
	enum hoist_status st = json ? hoist_plan_print_json(plan, f) : hoist_plan_print(plan, f);
	fclose(f);
	PyObject *out = st == HOIST_OK ? PyUnicode_FromStringAndSize(buf, (Py_ssize_t)len)
	                               : raise_status(st);
	free(buf);
	return out;
}

/* How many tensors planned for cpu lie in their file at an offset that is not a
 * multiple of their element size: a mapped view of one would be misaligned. */
static PyObject *Plan_misaligned(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	const struct hoist_plan *plan = ((PlanObject *)self)->plan;
	const struct hoist_checkpoint *ck = hoist_plan_checkpoint(plan);
	size_t bad = 0;
	for (size_t i = 0; i < hoist_plan_tensor_count(plan); i++) {
		const struct hoist_tensor_info *t = hoist_checkpoint_tensor(ck, i);
		unsigned size = hoist_dtype_bits(t->dtype) / 8;
		if (hoist_plan_tensor(plan, i)->device.kind == HOIST_DEVICE_CPU && size > 1 &&
		    t->offset % size)
			bad++;
	}
	return PyLong_FromSize_t(bad);
}

/* How many tensors planned for cpu the plan converts (a mapped view cannot). */
static PyObject *Plan_converts(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	const struct hoist_plan *plan = ((PlanObject *)self)->plan;
	const struct hoist_checkpoint *ck = hoist_plan_checkpoint(plan);
	size_t n = 0;
	for (size_t i = 0; i < hoist_plan_tensor_count(plan); i++) {
		const struct hoist_placement *pl = hoist_plan_tensor(plan, i);
		n += pl->device.kind == HOIST_DEVICE_CPU &&
		     pl->dtype != hoist_checkpoint_tensor(ck, i)->dtype;
	}
	return PyLong_FromSize_t(n);
}

static PyObject *Plan_summary(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	const struct hoist_plan *plan = ((PlanObject *)self)->plan;
	const char *dt = hoist_dtype_name(hoist_plan_dtype(plan));
	return Py_BuildValue(
	        "{s:d,s:d,s:n,s:z,s:z,s:d}", "warm_seconds", hoist_plan_predicted_seconds(plan, 0),
	        "cold_seconds", hoist_plan_predicted_seconds(plan, 1), "device_changes",
	        (Py_ssize_t)hoist_plan_device_changes(plan), "notice", hoist_plan_notice(plan),
	        "dtype", dt, "seconds", hoist_plan_seconds(plan));
}

/* ---- Model and loading --------------------------------------------------------------- */

typedef struct {
	PyObject_HEAD struct hoist_model *model;
	PyObject *checkpoint;
} ModelObject;

typedef struct {
	PyObject_HEAD struct hoist_model *model; /* a reference of its own */
	PyObject *checkpoint;
	size_t index;
	unsigned flags; /* HOIST_DLPACK_BYTES for the byte view */
} TensorObject;

static void Model_dealloc(PyObject *self)
{
	ModelObject *m = (ModelObject *)self;
	hoist_model_free(m->model);
	Py_XDECREF(m->checkpoint);
	dealloc_heap(self);
}

static void Tensor_dealloc(PyObject *self)
{
	TensorObject *t = (TensorObject *)self;
	hoist_model_free(t->model);
	Py_XDECREF(t->checkpoint);
	dealloc_heap(self);
}

static PyObject *make_tensor(struct hoist_model *m, PyObject *checkpoint, size_t index,
                             unsigned flags)
{
	TensorObject *t = PyObject_New(TensorObject, TensorType);
	if (!t)
		return NULL;
	t->model = hoist_model_retain(m);
	Py_INCREF(checkpoint);
	t->checkpoint = checkpoint;
	t->index = index;
	t->flags = flags;
	return (PyObject *)t;
}

struct load_ctx {
	PyThreadState *ts;
	PyObject *progress, *landed, *checkpoint;
	PyObject *type, *value, *tb; /* the first Python exception, kept until the end */
};

static void keep_error(struct load_ctx *l)
{
	if (!l->type)
		PyErr_Fetch(&l->type, &l->value, &l->tb);
	else
		PyErr_Clear();
}

/* On the calling thread, GIL released: take it, look for Ctrl-C and call the
 * caller's callback; a pending exception cancels the load. */
static int on_progress(const struct hoist_progress *pr, void *arg)
{
	struct load_ctx *l = arg;
	PyEval_RestoreThread(l->ts);
	int stop = l->type != NULL;
	if (!stop && PyErr_CheckSignals() < 0) {
		keep_error(l);
		stop = 1;
	}
	if (!stop && l->progress) {
		PyObject *r =
		        PyObject_CallFunction(l->progress, "sKKd", hoist_phase_name(pr->phase),
		                              (unsigned long long)pr->bytes_done,
		                              (unsigned long long)pr->bytes_total, pr->seconds);
		if (!r) {
			keep_error(l);
			stop = 1;
		} else {
			stop = PyObject_IsTrue(r) == 1;
			Py_DECREF(r);
		}
	}
	l->ts = PyEval_SaveThread();
	return stop;
}

static int on_landed(struct hoist_model *m, size_t tensor, void *arg)
{
	struct load_ctx *l = arg;
	PyEval_RestoreThread(l->ts);
	int stop = l->type != NULL;
	if (!stop && PyErr_CheckSignals() < 0) {
		keep_error(l);
		stop = 1;
	}
	if (!stop) {
		PyObject *t = make_tensor(m, l->checkpoint, tensor, 0);
		PyObject *r =
		        t ? PyObject_CallFunction(l->landed, "nO", (Py_ssize_t)tensor, t) : NULL;
		Py_XDECREF(t);
		if (!r) {
			keep_error(l);
			stop = 1;
		}
		Py_XDECREF(r);
	}
	l->ts = PyEval_SaveThread();
	return stop;
}

static PyObject *Plan_load(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *names[] = {"threads", "chunk_bytes", "staging_bytes", "direct", "progress",
	                        "landed",  NULL};
	PlanObject *p = (PlanObject *)self;
	unsigned threads = 0;
	unsigned long long chunk = 0, staging = 0;
	int direct = 0;
	PyObject *progress = NULL, *landed = NULL;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|IKKpOO", names, &threads, &chunk, &staging,
	                                 &direct, &progress, &landed))
		return NULL;
	struct hoist_sim_options sim = p->sim;
	struct load_ctx l = {NULL,
	                     progress && progress != Py_None ? progress : NULL,
	                     landed && landed != Py_None ? landed : NULL,
	                     p->checkpoint,
	                     NULL,
	                     NULL,
	                     NULL};
	struct hoist_options opt = {
	        .host_memory = p->host_memory,
	        .threads = threads,
	        .chunk_bytes = chunk,
	        .staging_bytes = staging,
	        .direct = direct,
	        .progress = on_progress,
	        .progress_arg = &l,
	        .landed = l.landed ? on_landed : NULL,
	        .landed_arg = &l,
	        .sim = &sim,
	};
	struct hoist_model *m = NULL;
	enum hoist_status st;
	l.ts = PyEval_SaveThread();
	st = hoist_model_load(p->plan, &opt, &m);
	PyEval_RestoreThread(l.ts);
	if (l.type) {
		/* the caller's exception (KeyboardInterrupt included) over CANCELLED */
		hoist_model_free(m);
		PyErr_Restore(l.type, l.value, l.tb);
		return NULL;
	}
	if (st != HOIST_OK)
		return raise_status(st);
	ModelObject *mo = PyObject_New(ModelObject, ModelType);
	if (!mo) {
		hoist_model_free(m);
		return NULL;
	}
	mo->model = m;
	Py_INCREF(p->checkpoint);
	mo->checkpoint = p->checkpoint;
	return (PyObject *)mo;
}

static PyObject *Model_count(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	return PyLong_FromSize_t(hoist_model_tensor_count(((ModelObject *)self)->model));
}

static PyObject *Model_tensor(PyObject *self, PyObject *args)
{
	Py_ssize_t i;
	int bytes = 0;
	if (!PyArg_ParseTuple(args, "n|p", &i, &bytes))
		return NULL;
	ModelObject *m = (ModelObject *)self;
	if (i < 0 || (size_t)i >= hoist_model_tensor_count(m->model)) {
		PyErr_SetString(PyExc_IndexError, "no such tensor");
		return NULL;
	}
	return make_tensor(m->model, m->checkpoint, (size_t)i, bytes ? HOIST_DLPACK_BYTES : 0);
}

static void capsule_destructor(PyObject *cap)
{
	/* Only a capsule nobody consumed still has its first name; a consumer that took
	 * it renamed it and calls the deleter itself. */
	if (PyCapsule_IsValid(cap, HOIST_DLPACK_CAPSULE)) {
		DLManagedTensor *t = PyCapsule_GetPointer(cap, HOIST_DLPACK_CAPSULE);
		if (t && t->deleter)
			t->deleter(t);
	} else if (PyCapsule_IsValid(cap, HOIST_DLPACK_CAPSULE_VERSIONED)) {
		DLManagedTensorVersioned *t =
		        PyCapsule_GetPointer(cap, HOIST_DLPACK_CAPSULE_VERSIONED);
		if (t && t->deleter)
			t->deleter(t);
	}
	PyErr_Clear();
}

static PyObject *capsule(struct hoist_model *m, size_t index, unsigned flags, int versioned,
                         unsigned minor)
{
	enum hoist_status st;
	if (versioned) {
		DLManagedTensorVersioned *t;
		if ((st = hoist_model_dlpack_versioned(m, index, flags, &t)) != HOIST_OK)
			return raise_status(st);
		if (minor < t->version.minor)
			t->version.minor = minor; /* what the consumer asked for; same layout */
		PyObject *c = PyCapsule_New(t, HOIST_DLPACK_CAPSULE_VERSIONED, capsule_destructor);
		if (!c)
			t->deleter(t);
		return c;
	}
	DLManagedTensor *t;
	if ((st = hoist_model_dlpack(m, index, flags, &t)) != HOIST_OK)
		return raise_status(st);
	PyObject *c = PyCapsule_New(t, HOIST_DLPACK_CAPSULE, capsule_destructor);
	if (!c)
		t->deleter(t);
	return c;
}

/* Legacy capsules of many tensors at once (the fast path of hoist.load): indices,
 * and for each whether it goes as bytes. */
static PyObject *Model_capsules(PyObject *self, PyObject *args)
{
	PyObject *indices, *bytes;
	int versioned = 0;
	if (!PyArg_ParseTuple(args, "OO|p", &indices, &bytes, &versioned))
		return NULL;
	ModelObject *m = (ModelObject *)self;
	Py_ssize_t n = PySequence_Size(indices);
	if (n < 0 || PySequence_Size(bytes) != n) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_ValueError, "indices and bytes differ in length");
		return NULL;
	}
	PyObject *list = PyList_New(n);
	for (Py_ssize_t i = 0; list && i < n; i++) {
		PyObject *x = PySequence_GetItem(indices, i);
		PyObject *b = x ? PySequence_GetItem(bytes, i) : NULL;
		size_t idx = x ? PyLong_AsSize_t(x) : 0;
		int asb = b ? PyObject_IsTrue(b) : -1;
		Py_XDECREF(x);
		Py_XDECREF(b);
		PyObject *c = PyErr_Occurred() || asb < 0
		                      ? NULL
		                      : capsule(m->model, idx, asb ? HOIST_DLPACK_BYTES : 0,
		                                versioned, DLPACK_MINOR_VERSION);
		if (!c) {
			Py_DECREF(list);
			return NULL;
		}
		PyList_SetItem(list, i, c);
	}
	return list;
}

/* Device strings of one call, by kind and index: a model has a few devices. */
struct device_strings {
	struct hoist_device device[8];
	PyObject *text[8];
	int n;
};

static PyObject *cached_device(struct device_strings *c, struct hoist_device d)
{
	for (int i = 0; i < c->n; i++)
		if (c->device[i].kind == d.kind && c->device[i].index == d.index) {
			Py_INCREF(c->text[i]);
			return c->text[i];
		}
	PyObject *s = device_str(d);
	if (s && c->n < 8) {
		c->device[c->n] = d;
		c->text[c->n++] = s;
		Py_INCREF(s);
	}
	return s;
}

static void device_strings_free(struct device_strings *c)
{
	for (int i = 0; i < c->n; i++)
		Py_DECREF(c->text[i]);
}

/* (name, device, dtype, shape, nbytes, address) of tensor i of a model loaded from
 * the checkpoint object ck. */
static PyObject *tensor_tuple(PyObject *ck, const struct hoist_tensor *t, size_t i,
                              struct device_strings *devs)
{
	CheckpointObject *c = (CheckpointObject *)ck;
	PyObject *dev = devs ? cached_device(devs, t->device) : device_str(t->device);
	if (!dev)
		return NULL;
	return Py_BuildValue("(ONNOKK)", PyTuple_GetItem(c->names, (Py_ssize_t)i), dev,
	                     dtype_str(t->dtype), PyTuple_GetItem(c->shapes, (Py_ssize_t)i),
	                     (unsigned long long)t->nbytes, (unsigned long long)(uintptr_t)t->data);
}

static PyObject *Model_describe(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	ModelObject *m = (ModelObject *)self;
	size_t n = hoist_model_tensor_count(m->model);
	PyObject *list = PyList_New((Py_ssize_t)n);
	struct device_strings devs = {.n = 0};
	for (size_t i = 0; list && i < n; i++) {
		PyObject *item =
		        tensor_tuple(m->checkpoint, hoist_model_tensor(m->model, i), i, &devs);
		if (!item) {
			Py_CLEAR(list);
			break;
		}
		PyList_SetItem(list, (Py_ssize_t)i, item);
	}
	device_strings_free(&devs);
	return list;
}

/* {name: value} in file order, made in one pass (the fast path of hoist.load):
 * mode 0 hands convert a legacy capsule, mode 1 the Tensor, mode 2 keeps the Tensor;
 * as_bytes (indexed by hoist dtype) says which dtypes go as their bytes, and
 * post(value, dtype, shape) then views them as the dtype; other(index, Tensor) makes the
 * value of a tensor in no host-readable memory (disk, sim). */
static PyObject *Model_collect(PyObject *self, PyObject *args)
{
	int mode;
	PyObject *convert, *as_bytes, *post, *other;
	if (!PyArg_ParseTuple(args, "iOOOO", &mode, &convert, &as_bytes, &post, &other))
		return NULL;
	ModelObject *m = (ModelObject *)self;
	CheckpointObject *c = (CheckpointObject *)m->checkpoint;
	size_t n = hoist_model_tensor_count(m->model);
	bool bytes_of[HOIST_DTYPE_COUNT] = {false};
	for (int d = 0; d < HOIST_DTYPE_COUNT; d++) {
		PyObject *v = PySequence_GetItem(as_bytes, d);
		int t = v ? PyObject_IsTrue(v) : -1;
		Py_XDECREF(v);
		if (t < 0)
			return NULL;
		bytes_of[d] = t;
	}
	PyObject *out = PyDict_New();
	for (size_t i = 0; out && i < n; i++) {
		const struct hoist_tensor *t = hoist_model_tensor(m->model, i);
		bool host =
		        t->device.kind == HOIST_DEVICE_CPU || t->device.kind == HOIST_DEVICE_CUDA;
		bool bytes = bytes_of[t->dtype];
		PyObject *value = NULL;
		if (!host) {
			PyObject *obj = make_tensor(m->model, m->checkpoint, i, 0);
			value = obj ? PyObject_CallFunction(other, "nO", (Py_ssize_t)i, obj) : NULL;
			Py_XDECREF(obj);
		} else if (mode == 2) {
			value = make_tensor(m->model, m->checkpoint, i, 0);
		} else {
			unsigned flags = bytes ? HOIST_DLPACK_BYTES : 0;
			PyObject *arg = mode == 0 ? capsule(m->model, i, flags, 0, 0)
			                          : make_tensor(m->model, m->checkpoint, i, flags);
			value = arg ? PyObject_CallFunctionObjArgs(convert, arg, NULL) : NULL;
			Py_XDECREF(arg);
			if (value && bytes) {
				PyObject *viewed = PyObject_CallFunction(
				        post, "ONO", value, dtype_str(t->dtype),
				        PyTuple_GetItem(c->shapes, (Py_ssize_t)i));
				Py_DECREF(value);
				value = viewed;
			}
		}
		if (!value ||
		    PyDict_SetItem(out, PyTuple_GetItem(c->names, (Py_ssize_t)i), value) < 0)
			Py_CLEAR(out);
		Py_XDECREF(value);
	}
	return out;
}

static PyObject *report_dict(const struct hoist_model *m)
{
	const struct hoist_report *r = hoist_model_report(m);
	PyObject *phases = PyDict_New(), *devices = PyList_New(0);
	PyObject *out = NULL;
	if (!phases || !devices)
		goto out;
	for (int i = 0; i < HOIST_PHASE_COUNT; i++) {
		PyObject *v = PyFloat_FromDouble(r->seconds[i]);
		if (!v ||
		    PyDict_SetItemString(phases, hoist_phase_name((enum hoist_phase)i), v) < 0) {
			Py_XDECREF(v);
			goto out;
		}
		Py_DECREF(v);
	}
	for (size_t i = 0; i < hoist_model_device_count(m); i++) {
		const struct hoist_model_device *d = hoist_model_device(m, i);
		PyObject *dev = device_str(d->device);
		PyObject *v = dev ? Py_BuildValue("{s:N,s:K,s:s}", "device", dev, "bytes",
		                                  (unsigned long long)d->bytes, "memory", d->memory)
		                  : NULL;
		if (!v || PyList_Append(devices, v) < 0) {
			Py_XDECREF(v);
			goto out;
		}
		Py_DECREF(v);
	}
	const char *bound = hoist_bound_name(r->bound);
	out = Py_BuildValue(
	        "{s:O,s:d,s:n,s:n,s:K,s:K,s:K,s:O,s:z,s:d,s:d,s:d,s:I,s:n,s:s,s:O,s:O,s:z,s:s}",
	        "seconds", phases, "total_seconds", r->total_seconds, "shards",
	        (Py_ssize_t)r->shards, "tensors", (Py_ssize_t)r->tensors, "checkpoint_bytes",
	        (unsigned long long)r->checkpoint_bytes, "moved_bytes",
	        (unsigned long long)r->moved_bytes, "read_bytes", (unsigned long long)r->read_bytes,
	        "devices", devices, "bound", bound, "read_busy", r->read_busy, "staging_wait",
	        r->staging_wait, "copy_busy", r->copy_busy, "readers", r->readers, "chunks",
	        (Py_ssize_t)r->chunks, "staging", r->staging ? r->staging : "", "direct_io",
	        r->direct_io ? Py_True : Py_False, "mapped", r->mapped ? Py_True : Py_False,
	        "dtype", hoist_dtype_name(r->dtype), "note", r->note ? r->note : "");
out:
	Py_XDECREF(phases);
	Py_XDECREF(devices);
	return out;
}

static PyObject *Model_report(PyObject *self, PyObject *args)
{
	int text = 0;
	if (!PyArg_ParseTuple(args, "|p", &text))
		return NULL;
	ModelObject *m = (ModelObject *)self;
	if (!text)
		return report_dict(m->model);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return PyErr_NoMemory();
	enum hoist_status st = hoist_model_report_print(m->model, f);
	fclose(f);
	PyObject *out = st == HOIST_OK ? PyUnicode_FromStringAndSize(buf, (Py_ssize_t)len)
	                               : raise_status(st);
	free(buf);
	return out;
}

/* ---- Tensor -------------------------------------------------------------------------- */

static const struct hoist_tensor *view_of(TensorObject *t)
{
	return hoist_model_tensor(t->model, t->index);
}

static PyObject *Tensor_info(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	TensorObject *t = (TensorObject *)self;
	return tensor_tuple(t->checkpoint, view_of(t), t->index, NULL);
}

static PyObject *Tensor_dlpack_device(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	const struct hoist_tensor *t = view_of((TensorObject *)self);
	switch (t->device.kind) {
	case HOIST_DEVICE_CPU: return Py_BuildValue("(ii)", kDLCPU, 0);
	case HOIST_DEVICE_CUDA: return Py_BuildValue("(ii)", kDLCUDA, t->device.index);
	case HOIST_DEVICE_SIM: return Py_BuildValue("(ii)", kDLExtDev, t->device.index);
	default:
		PyErr_Format(PyExc_BufferError,
		             "tensor \"%s\" is on disk, in no memory: read it (hoist's DiskTensor)",
		             t->name);
		return NULL;
	}
}

/* __dlpack__(stream=None, max_version=None, dl_device=None, copy=None), as the
 * Python array API specifies it. hoist_model_load returns once every copy has
 * completed, so the consumer's stream needs no ordering after hoist's: stream is
 * accepted and needs nothing. */
static PyObject *Tensor_dlpack(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *names[] = {"stream", "max_version", "dl_device", "copy", NULL};
	PyObject *stream = Py_None, *max_version = Py_None, *dl_device = Py_None, *copy = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|$OOOO", names, &stream, &max_version,
	                                 &dl_device, &copy))
		return NULL;
	TensorObject *t = (TensorObject *)self;
	const struct hoist_tensor *v = view_of(t);
	if (v->device.kind == HOIST_DEVICE_SIM || v->device.kind == HOIST_DEVICE_DISK) {
		char name[32];
		PyErr_Format(PyExc_BufferError,
		             "tensor \"%s\" is on %s: no DLPack consumer can read that memory",
		             v->name, hoist_device_format(v->device, name, sizeof name));
		return NULL;
	}
	if (copy != Py_None && PyObject_IsTrue(copy) == 1) {
		PyErr_SetString(PyExc_BufferError,
		                "hoist exports its tensors without copying them");
		return NULL;
	}
	if (dl_device != Py_None) {
		PyObject *mine = Tensor_dlpack_device(self, NULL);
		int same = mine ? PyObject_RichCompareBool(mine, dl_device, Py_EQ) : -1;
		Py_XDECREF(mine);
		if (same < 0)
			return NULL;
		if (!same) {
			PyErr_SetString(
			        PyExc_BufferError,
			        "hoist exports a tensor on its own device only (dl_device)");
			return NULL;
		}
	}
	int versioned = 0;
	unsigned minor = 0;
	if (max_version != Py_None) {
		long major = -1, mn = 0;
		PyObject *a = PySequence_GetItem(max_version, 0);
		PyObject *b = a ? PySequence_GetItem(max_version, 1) : NULL;
		if (a && b) {
			major = PyLong_AsLong(a);
			mn = PyLong_AsLong(b);
		}
		Py_XDECREF(a);
		Py_XDECREF(b);
		if (PyErr_Occurred())
			return NULL;
		versioned = major >= 1;
		minor = major > 1 ? DLPACK_MINOR_VERSION : mn < 0 ? 0 : (unsigned)mn;
	}
	return capsule(t->model, t->index, t->flags, versioned, minor);
}

static PyObject *Tensor_read_into(PyObject *self, PyObject *args)
{
	unsigned long long offset, address, size;
	if (!PyArg_ParseTuple(args, "KKK", &offset, &address, &size))
		return NULL;
	TensorObject *t = (TensorObject *)self;
	enum hoist_status st;
	Py_BEGIN_ALLOW_THREADS st =
	        hoist_model_read_at(t->model, t->index, offset, (void *)(uintptr_t)address, size);
	Py_END_ALLOW_THREADS if (st != HOIST_OK) return raise_status(st);
	Py_RETURN_NONE;
}

static PyObject *Tensor_bytes_view(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	TensorObject *t = (TensorObject *)self;
	return make_tensor(t->model, t->checkpoint, t->index, HOIST_DLPACK_BYTES);
}

/* ---- module ---------------------------------------------------------------------------- */

static PyObject *mod_open(PyObject *mod, PyObject *args)
{
	(void)mod;
	const char *path;
	if (!PyArg_ParseTuple(args, "s", &path))
		return NULL;
	CheckpointObject *c = PyObject_New(CheckpointObject, CheckpointType);
	if (!c)
		return NULL;
	c->ckpt = NULL;
	c->names = c->shapes = NULL;
	enum hoist_status st;
	Py_BEGIN_ALLOW_THREADS st = hoist_checkpoint_open(path, NULL, &c->ckpt);
	Py_END_ALLOW_THREADS if (st != HOIST_OK)
	{
		Py_DECREF(c);
		return raise_status(st);
	}
	/* names and shapes once: every view of the tensors shares them */
	size_t n = hoist_checkpoint_tensor_count(c->ckpt);
	c->names = PyTuple_New((Py_ssize_t)n);
	c->shapes = c->names ? PyTuple_New((Py_ssize_t)n) : NULL;
	for (size_t i = 0; c->shapes && i < n; i++) {
		const struct hoist_tensor_info *t = hoist_checkpoint_tensor(c->ckpt, i);
		PyObject *name = PyUnicode_FromString(t->name);
		PyObject *shape = name ? shape_tuple(t->ndim, t->shape) : NULL;
		if (!shape) {
			Py_XDECREF(name);
			Py_DECREF(c);
			return NULL;
		}
		PyTuple_SetItem(c->names, (Py_ssize_t)i, name);
		PyTuple_SetItem(c->shapes, (Py_ssize_t)i, shape);
	}
	if (!c->shapes) {
		Py_DECREF(c);
		return NULL;
	}
	return (PyObject *)c;
}

static PyObject *mod_set_errors(PyObject *mod, PyObject *arg)
{
	(void)mod;
	if (!PyDict_Check(arg)) {
		PyErr_SetString(PyExc_TypeError, "expected a dict {status: class}");
		return NULL;
	}
	Py_INCREF(arg);
	PyObject *old = error_classes;
	error_classes = arg;
	Py_XDECREF(old);
	Py_RETURN_NONE;
}

static PyObject *mod_hub_resolve(PyObject *mod, PyObject *args)
{
	(void)mod;
	const char *id, *revision = NULL;
	if (!PyArg_ParseTuple(args, "s|z", &id, &revision))
		return NULL;
	char out[8192];
	enum hoist_status st = hoist_hub_resolve(id, revision, out, sizeof out);
	return st == HOIST_OK ? PyUnicode_FromString(out) : raise_status(st);
}

static PyObject *mod_fault_set(PyObject *mod, PyObject *args)
{
	(void)mod;
	int kind, err, sticky = 0;
	long nth;
	if (!PyArg_ParseTuple(args, "ili|p", &kind, &nth, &err, &sticky))
		return NULL;
	hoist_fault_set((enum hoist_fault)kind, nth, err, sticky != 0);
	Py_RETURN_NONE;
}

static PyMethodDef checkpoint_methods[] = {
        {"tensors", Checkpoint_tensors, METH_NOARGS,
         "[(name, dtype, shape, shard path, offset, nbytes)] in file order"},
        {"info", Checkpoint_info, METH_NOARGS, "metadata, shards, warnings, config"},
        {"names", Checkpoint_names, METH_NOARGS, "the tensor names, in file order"},
        {"plan", (PyCFunction)(void (*)(void))Checkpoint_plan, METH_VARARGS | METH_KEYWORDS,
         "hoist_plan_create"},
        {NULL, NULL, 0, NULL},
};

static PyMethodDef plan_methods[] = {
        {"devices", Plan_devices, METH_NOARGS, "[(device, budget, bytes, tensors, source)]"},
        {"units", Plan_units, METH_NOARGS, "[(name, device, bytes, tensors, tied)], in order"},
        {"placements", Plan_placements, METH_NOARGS, "each tensor's device"},
        {"print", Plan_print, METH_VARARGS, "the plan as text, or JSON with True"},
        {"summary", Plan_summary, METH_NOARGS, "predicted seconds, device changes, notice"},
        {"misaligned", Plan_misaligned, METH_NOARGS,
         "cpu tensors whose file offset is not a multiple of their element size"},
        {"converts", Plan_converts, METH_NOARGS, "cpu tensors the plan converts"},
        {"load", (PyCFunction)(void (*)(void))Plan_load, METH_VARARGS | METH_KEYWORDS,
         "hoist_model_load"},
        {NULL, NULL, 0, NULL},
};

static PyMethodDef model_methods[] = {
        {"count", Model_count, METH_NOARGS, "the number of tensors"},
        {"tensor", Model_tensor, METH_VARARGS, "tensor(i, bytes=False) -> Tensor"},
        {"capsules", Model_capsules, METH_VARARGS,
         "capsules(indices, bytes, versioned=False): DLPack capsules of many tensors"},
        {"describe", Model_describe, METH_NOARGS,
         "[(name, device, dtype, shape, nbytes, address)]"},
        {"collect", Model_collect, METH_VARARGS,
         "collect(mode, convert, as_bytes, post, other) -> {name: value}"},
        {"report", Model_report, METH_VARARGS, "the timing report: a dict, or text"},
        {NULL, NULL, 0, NULL},
};

static PyMethodDef tensor_methods[] = {
        {"__dlpack__", (PyCFunction)(void (*)(void))Tensor_dlpack, METH_VARARGS | METH_KEYWORDS,
         "a DLPack capsule (versioned when max_version >= (1, 0))"},
        {"__dlpack_device__", Tensor_dlpack_device, METH_NOARGS, "(device_type, device_id)"},
        {"info", Tensor_info, METH_NOARGS, "(name, device, dtype, shape, nbytes, address)"},
        {"read_into", Tensor_read_into, METH_VARARGS,
         "read_into(offset, address, size): copy bytes of it into host memory"},
        {"bytes_view", Tensor_bytes_view, METH_NOARGS, "the same tensor exported as uint8"},
        {NULL, NULL, 0, NULL},
};

static PyType_Slot checkpoint_slots[] = {
        {Py_tp_dealloc, Checkpoint_dealloc}, {Py_tp_methods, checkpoint_methods}, {0, NULL}};
static PyType_Slot plan_slots[] = {
        {Py_tp_dealloc, Plan_dealloc}, {Py_tp_methods, plan_methods}, {0, NULL}};
static PyType_Slot model_slots[] = {
        {Py_tp_dealloc, Model_dealloc}, {Py_tp_methods, model_methods}, {0, NULL}};
static PyType_Slot tensor_slots[] = {
        {Py_tp_dealloc, Tensor_dealloc}, {Py_tp_methods, tensor_methods}, {0, NULL}};

static PyType_Spec checkpoint_spec = {"hoist._hoist.Checkpoint", sizeof(CheckpointObject), 0,
                                      Py_TPFLAGS_DEFAULT, checkpoint_slots};
static PyType_Spec plan_spec = {"hoist._hoist.Plan", sizeof(PlanObject), 0, Py_TPFLAGS_DEFAULT,
                                plan_slots};
static PyType_Spec model_spec = {"hoist._hoist.Model", sizeof(ModelObject), 0, Py_TPFLAGS_DEFAULT,
                                 model_slots};
static PyType_Spec tensor_spec = {"hoist._hoist.Tensor", sizeof(TensorObject), 0,
                                  Py_TPFLAGS_DEFAULT, tensor_slots};

static PyMethodDef module_methods[] = {
        {"open", mod_open, METH_VARARGS, "open(path) -> Checkpoint"},
        {"_set_errors", mod_set_errors, METH_O, "the exception class of each status"},
        {"hub_resolve", mod_hub_resolve, METH_VARARGS, "hub_resolve(id, revision=None)"},
        {"_fault_set", mod_fault_set, METH_VARARGS, "hoist_fault_set (tests)"},
        {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT,
                                    "hoist._hoist",
                                    "The C extension over libhoist (see hoist).",
                                    -1,
                                    module_methods,
                                    NULL,
                                    NULL,
                                    NULL,
                                    NULL};

PyMODINIT_FUNC PyInit__hoist(void)
{
	PyObject *m = PyModule_Create(&module);
	if (!m)
		return NULL;
	for (int d = 1; d < HOIST_DTYPE_COUNT; d++)
		if (!dtype_strings[d] && !(dtype_strings[d] = PyUnicode_FromString(
		                                   hoist_dtype_name((enum hoist_dtype)d)))) {
			Py_DECREF(m);
			return NULL;
		}
	CheckpointType = (PyTypeObject *)PyType_FromSpec(&checkpoint_spec);
	PlanType = (PyTypeObject *)PyType_FromSpec(&plan_spec);
	ModelType = (PyTypeObject *)PyType_FromSpec(&model_spec);
	TensorType = (PyTypeObject *)PyType_FromSpec(&tensor_spec);
	if (!CheckpointType || !PlanType || !ModelType || !TensorType) {
		Py_DECREF(m);
		return NULL;
	}
	PyModule_AddIntConstant(m, "ABI", HOIST_PY_ABI);
	PyModule_AddStringConstant(m, "version", hoist_version());
	PyModule_AddStringConstant(m, "header_version", HOIST_VERSION_STRING);
	PyModule_AddIntConstant(m, "ROOM_LARGEST_UNIT", HOIST_ROOM_LARGEST_UNIT);
	Py_INCREF(TensorType);
	PyModule_AddObject(m, "Tensor", (PyObject *)TensorType);
	return m;
}
