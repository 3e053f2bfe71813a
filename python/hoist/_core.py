"""hoist.open, Checkpoint.plan, hoist.load and hoist.iter over the C extension.

Arguments are spelled as accelerate spells them: device_map "auto" / "balanced" /
"sequential", a {prefix: device} dict or one device; max_memory {0: "20GiB", "cpu":
"64GiB", "disk": "1TB"} (strings or int bytes); devices as torch spells them ("cuda:0",
0, "cpu", "disk"), plus "sim:N", the simulated accelerator of hoist's tests. dtype a
torch dtype or a name ("bfloat16").

On cpu with no conversion, tensors are views of the memory-mapped shards (private:
a write goes to the process's own copy of the page, never to the file), as
safetensors gives them; host_memory="pageable" or "pinned" copies into fresh memory,
and hoist does so by itself where a conversion or a misaligned tensor needs it."""

import json
import os
import queue
import sys
import threading
from collections import namedtuple

from . import _compat
from ._errors import CancelledError
from ._lazy import DiskTensor

_native = None  # hoist._hoist, set by the package at import

Progress = namedtuple("Progress", "phase bytes_done bytes_total seconds")

_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")


# --- arguments -----------------------------------------------------------------------

def device_name(device):
    """hoist's spelling of a device: "cuda:N", "cpu", "disk", "sim:N"."""
    if isinstance(device, bool):
        raise TypeError(f"device {device!r}")
    if isinstance(device, int):
        return f"cuda:{device}"
    if type(device).__name__ == "device":  # torch.device
        return f"cuda:{device.index or 0}" if device.type == "cuda" else device.type
    text = str(device)
    if text == "cuda":
        return "cuda:0"
    if text in ("cpu", "disk") or text.startswith(("cuda:", "sim:")):
        return text
    if text.isdigit():
        return f"cuda:{text}"
    raise ValueError(f"device {device!r}: expected a GPU ordinal, \"cuda:N\", \"cpu\", "
                     f"\"disk\" (or \"sim:N\")")


def target_name(device):
    """A target device: as device_name, or "cuda" / "sim" for every device of the kind."""
    return device if device in ("cuda", "sim") else device_name(device)


def accelerate_device(name):
    """A device as accelerate's maps write it: GPU ordinals as ints."""
    return int(name[5:]) if name.startswith("cuda:") else name


def max_memory_text(max_memory):
    """{0: "20GiB", "cpu": 64 << 30, "disk": "1TB"} as hoist's "0=20GiB,cpu=...,disk=1TB"."""
    if max_memory is None:
        return None
    if isinstance(max_memory, str):
        return max_memory
    items = []
    for key, value in max_memory.items():
        key = device_name(key) if not isinstance(key, str) or key not in ("cpu", "disk") \
            else key
        items.append(f"{key}={value if isinstance(value, str) else int(value)}")
    return ",".join(items)


def dtype_text(dtype):
    if dtype is None or dtype == "auto":
        return None
    return _compat.torch_dtype_name(dtype)


class _Converter:
    """Turns the extension's tensors into the framework's, without copying."""

    def __init__(self, framework, checkpoint=None):
        self.checkpoint = checkpoint  # where disk tensors lie (read on first need)
        if framework not in ("torch", "numpy", "dlpack"):
            raise ValueError(f"framework {framework!r}: expected \"torch\", \"numpy\" or "
                             f"\"dlpack\"")
        self.framework = framework
        self.from_capsule = _compat.torch_from_capsule() if framework == "torch" else None

    def how(self, dtype):
        """(target dtype or None, whether it goes as bytes)."""
        if self.framework == "torch":
            target, native = _compat.torch_dtype(dtype)
        elif self.framework == "numpy":
            target, native = _compat.numpy_dtype(dtype)
        else:
            return None, False
        return target, not native

    def finish(self, value, dtype, shape, target):
        if target is None:
            return value
        return value.view(target).reshape(shape)

    def one(self, native, info):
        """The framework tensor for a landed tensor (info: its describe() tuple)."""
        name, device, dtype, shape, nbytes, _ = info
        if device == "disk":
            where = self.checkpoint._infos.get(name) if self.checkpoint else None
            return DiskTensor(native, name, where.file if where else None,
                              where.offset if where else None,
                              where.dtype if where else dtype, dtype, shape, nbytes,
                              self.framework)
        if self.framework == "dlpack" or device.startswith("sim:"):
            return native
        target, as_bytes = self.how(dtype)
        src = native.bytes_view() if as_bytes else native
        if self.framework == "torch":
            value = self.from_capsule(src.__dlpack__())
        else:
            value = _compat.numpy_from_dlpack(src)
        return self.finish(value, dtype, shape, target if as_bytes else None)


# --- checkpoints and plans ---------------------------------------------------------------

TensorInfo = namedtuple("TensorInfo", "name dtype shape file offset nbytes")


class Checkpoint:
    """An open checkpoint: its tensors' names, dtypes, shapes and places in the files,
    its metadata and config, from the headers alone."""

    def __init__(self, path, revision=None):
        spec = f"{path}@{revision}" if revision else os.fspath(path)
        self._c = _native.open(spec)
        self._closed = False
        info = self._c.info()
        self.shards = [s for s, _ in info["shards"]]
        self.path = os.path.dirname(self.shards[0]) if self.shards else os.fspath(path)
        self.metadata = info["metadata"]
        self.architecture = info["architecture"]
        self.config_dtype = info["config_dtype"]
        self.total_bytes = info["total_bytes"]
        self.warnings = info["warnings"]
        self._names = self._c.names()
        self._info_cache = None

    @property
    def _infos(self):
        """{name: TensorInfo} in file order, made on first use (a checkpoint of many
        tensors is opened and loaded without it)."""
        if self._info_cache is None:
            self._info_cache = {t[0]: TensorInfo(*t) for t in self._c.tensors()}
        return self._info_cache

    # what the checkpoint holds
    def keys(self):
        return list(self._names)

    def infos(self):
        """{name: TensorInfo}, in file order."""
        return dict(self._infos)

    @property
    def config(self):
        """config.json beside the shards, parsed; None without one."""
        path = os.path.join(self.path, "config.json")
        if not os.path.isfile(path):
            return None
        with open(path) as f:
            return json.load(f)

    def __contains__(self, name):
        return name in self._infos

    def __len__(self):
        return len(self._names)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """No new plans from this handle; the files close once the plans, models and
        tensors made from it are gone too (each keeps what it reads)."""
        self._closed = True

    def _native(self):
        if self._closed:
            raise ValueError("the checkpoint is closed")
        return self._c

    def plan(self, device_map="auto", max_memory=None, dtype=None, *, device=None,
             host_memory=None, offload_room=False, units=None, ties=None, skip=None,
             module_order=None, no_disk=False, sim=None):
        """Plans where every tensor goes, from metadata alone: a Plan.

        device_map: "auto" (= "balanced"), "sequential", a {prefix: device} dict, or one
        device. units: [(name, [checkpoint-name prefixes], device or None)] in
        execution order, ties: [[unit index, ...]], skip: checkpoint names not to
        load (hoist.transformers describes a model so). offload_room: keep the
        largest unit free on the first GPU and cpu, as accelerate does."""
        kw = _plan_arguments(device_map, device, units)
        mm = max_memory_text(max_memory)
        dt = dtype_text(dtype)
        hm = host_memory if host_memory is not None else "mmap"
        sim = dict(sim or {})
        native = self._native()

        def make(hm):
            return native.plan(max_memory=mm, dtype=dt, no_disk=no_disk, host_memory=hm,
                               offload_room=_native.ROOM_LARGEST_UNIT if offload_room else 0,
                               ties=ties, skip=skip, module_order=module_order,
                               sim_devices=int(sim.get("devices", 0)),
                               sim_capacity=int(sim.get("capacity", 0)),
                               sim_bandwidth=float(sim.get("bytes_per_sec", 0)), **kw)

        plan = make(hm)
        if hm == "mmap" and host_memory is None and (plan.converts() or plan.misaligned()):
            # views cannot convert, and a view of a tensor whose file offset is not a
            # multiple of its element size would be misaligned: fresh memory instead
            hm = "default"
            plan = make(hm)
        return Plan(self, plan, hm, sim)

    # the tensor-source protocol of hoist.transformers (hoist/source.py)
    def tensors(self):
        from .source import TensorInfo as SourceInfo

        return {n: SourceInfo(name=n, file=i.file, offset=i.offset, nbytes=i.nbytes,
                              dtype=i.dtype, shape=tuple(i.shape))
                for n, i in self._infos.items()}

    def load(self, placement, dtypes=None):
        """Loads the tensors placement names ({name: "cpu" | "cuda:N" | "disk"}) where it
        says, as torch tensors (disk: DiskTensor), at dtypes[name] where every floating
        tensor asks for one dtype (one conversion a load can make); others come as
        stored and the caller converts. The rest of the checkpoint is not read."""
        import torch

        units = [(n, [n], device_name(d)) for n, d in placement.items()]
        skip = [n for n in self._names if n not in placement]
        wanted = {str(d).replace("torch.", "") for n, d in (dtypes or {}).items()
                  if d is not None and d.is_floating_point and n in placement}
        dtype = None
        if len(wanted) == 1:
            (name,) = wanted
            if name in ("float16", "bfloat16", "float32"):
                dtype = getattr(torch, name)
        plan = self.plan(device_map="sequential", dtype=dtype, units=units, skip=skip)
        return {n: t for n, t in plan.load(framework="torch").items() if n in placement}

    def plan_units(self, request, max_memory=None, dtype=None, offload_room=True):
        """hoist.transformers' plan: the request's units (PlanRequest) in its order, its
        tie groups, everything else skipped. Returns {device_map key: device}."""
        covered = set()
        units = []
        for unit in request.units:
            units.append((unit.name, list(unit.prefixes), None))
            covered.update(unit.checkpoint_tensors)
        skip = [n for n in self._names if n not in covered]
        plan = self.plan(device_map="sequential", max_memory=max_memory, dtype=dtype,
                         units=units, ties=request.tie_groups, skip=skip,
                         offload_room=offload_room)
        placed = [accelerate_device(u[1]) for u in plan.units]
        result = {key: placed[i] for i, unit in enumerate(request.units) for key in unit.keys}
        return result, plan


def compact(device_map, module_names):
    """The same placement with the fewest keys: wherever every key under a module
    (module_names, any order) has one device, the module's name replaces them, up to
    "" for a model on one device (as accelerate's maps read: {"visual": 0, ...}).
    Buffer-only modules without a key of their own then follow their parent."""
    device_map = dict(device_map)
    for module in sorted(module_names, key=lambda n: -n.count(".") if n else 1):
        inner = [k for k in device_map
                 if module == "" or k == module or k.startswith(module + ".")]
        devices = {device_map[k] for k in inner}
        if inner and len(devices) == 1 and inner != [module]:
            for k in inner:
                del device_map[k]
            device_map[module] = devices.pop()
    return device_map


def _plan_arguments(device_map, device, units):
    """The extension's device / device_map / units for accelerate's device_map forms."""
    if units is not None:
        return {"device": target_name(device) if device is not None else None,
                "device_map": device_map if isinstance(device_map, str) and
                device_map in _STRATEGIES else "sequential", "units": units}
    if device_map is None:
        device_map = "auto"
    if isinstance(device_map, dict):
        units = [(k or "", [k], device_name(v)) for k, v in device_map.items()]
        return {"device": target_name(device) if device is not None else None,
                "device_map": "sequential", "units": units}
    if isinstance(device_map, str) and device_map in _STRATEGIES:
        strategy = "balanced" if device_map == "balanced_low_0" else device_map
        return {"device": target_name(device) if device is not None else None,
                "device_map": strategy}
    one = device_name(device_map)
    if one.startswith("sim:") or one in ("cpu", "disk") or one.startswith("cuda:"):
        return {"device": one, "device_map": None}
    raise ValueError(f"device_map {device_map!r}")


class Plan:
    """Where every tensor goes: device_map (accelerate's {module: device}), bytes per
    device, the predicted load time, the order the devices were filled along."""

    def __init__(self, checkpoint, native, host_memory, sim):
        self.checkpoint = checkpoint
        self._p = native
        self.host_memory = host_memory
        summary = native.summary()
        self.predicted_seconds = {"warm": summary["warm_seconds"],
                                  "cold": summary["cold_seconds"]}
        self.device_changes = summary["device_changes"]
        self.notice = summary["notice"]
        self.devices = {d[0]: {"budget": d[1], "bytes": d[2], "tensors": d[3],
                               "budget_from": d[4]} for d in native.devices()}
        self.units = native.units()  # [(name, device, bytes, tensors, tied)], in order

    @property
    def bytes_per_device(self):
        return {d: v["bytes"] for d, v in self.devices.items()}

    @property
    def placement(self):
        """{tensor name: device}, every tensor."""
        return dict(zip(self.checkpoint._names, self._p.placements()))

    @property
    def device_map(self):
        """{module or tensor-name prefix: device} as accelerate writes it: GPU ordinals
        as ints; prefixes merged where a whole module goes to one device."""
        flat = {}
        for name, device, _, _, _ in self.units:
            flat[name] = accelerate_device(device)
        modules = set()
        for name in flat:
            parts = name.split(".")
            modules.update(".".join(parts[:i]) for i in range(len(parts) + 1))
        return compact(flat, modules)

    def __str__(self):
        return self._p.print(False)

    def json(self):
        return json.loads(self._p.print(True))

    def load(self, framework="torch", progress=None, *, threads=0, chunk_bytes=0,
             staging_bytes=0, direct=False):
        """Loads by this plan: a dict {name: tensor} in checkpoint order (see hoist.load)."""
        conv = _Converter(framework, self.checkpoint)
        bar = _progress_callback(progress)
        model = self._p.load(threads=threads, chunk_bytes=chunk_bytes,
                             staging_bytes=staging_bytes, direct=direct, progress=bar)
        if bar is not None and hasattr(bar, "close"):
            bar.close()
        return _collect(model, conv, self)


class Loaded(dict):
    """hoist.load's result: {name: tensor} in checkpoint order, with the load's timing
    report (.report: seconds per phase, the bound, bytes per device) and its plan."""

    report = None
    plan = None


# hoist's dtypes in the order of enum hoist_dtype (hoist.h), for Model.collect.
_DTYPE_ORDER = ("NONE", "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4",
                "F6_E2M3", "F6_E3M2", "I16", "U16", "F16", "BF16", "I32", "U32", "F32",
                "C64", "F64", "I64", "U64")


def _collect(model, conv, plan):
    """{name: tensor} in file order, built by the extension in one pass: a capsule per
    tensor handed to torch's from_dlpack (or the Tensor to NumPy's), the dtypes the
    framework lacks as bytes viewed on its side, disk and sim tensors as DiskTensor
    and hoist Tensor."""
    targets = {}
    as_bytes = [False]  # HOIST_DTYPE_NONE
    for name in _DTYPE_ORDER[1:]:
        target, b = conv.how(name)
        as_bytes.append(b)
        targets[name] = target

    def post(value, dtype, shape):
        target = targets[dtype]
        return value if target is None else value.view(target).reshape(shape)

    def other(index, native):
        return conv.one(native, native.info())

    if conv.framework == "torch":
        mode, convert = 0, conv.from_capsule
    elif conv.framework == "numpy":
        mode, convert = 1, _compat.numpy_from_dlpack
    else:
        mode, convert = 2, None
    out = Loaded(model.collect(mode, convert, as_bytes, post, other))
    out.report = model.report()
    out.report["text"] = model.report(True)
    out.plan = plan
    return out


# --- progress --------------------------------------------------------------------------

class _Bar:
    """A one-line progress bar on stderr, redrawn at most every 0.1 s."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.last = -1.0
        self.drawn = False

    def __call__(self, phase, done, total, seconds):
        if phase != "stream" or total == 0 or (seconds - self.last < 0.1 and done < total):
            return False
        self.last = seconds
        width = 30
        filled = int(width * done / total)
        rate = done / seconds / 1e9 if seconds > 0 else 0.0
        self.stream.write(f"\rhoist: [{'#' * filled}{'.' * (width - filled)}] "
                          f"{done / 1e9:.2f} / {total / 1e9:.2f} GB  {rate:.2f} GB/s")
        self.stream.flush()
        self.drawn = True
        return False

    def close(self):
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def _progress_callback(progress):
    """The extension's callback for progress=True (a bar on a terminal), a callable
    (called with a Progress; a true result cancels), or None."""
    if progress is None or progress is False:
        return None
    if progress is True:
        return _Bar() if sys.stderr.isatty() else None

    def call(phase, done, total, seconds):
        return bool(progress(Progress(phase, done, total, seconds)))

    return call


# --- entry points ------------------------------------------------------------------------

def hub_resolve(model_id, revision=None):
    """The local snapshot directory of a Hub model id, from the Hugging Face cache
    (never downloaded); NotFoundError names where it looked."""
    return _native.hub_resolve(model_id, revision)


def open(path, revision=None):  # noqa: A001 - the package's name for it
    """Opens a checkpoint (a directory, an index, a .safetensors file, or a Hub model
    id in the local cache) from its headers: a Checkpoint."""
    return Checkpoint(path, revision)


def load(path, device_map="auto", max_memory=None, dtype=None, progress=None, *,
         framework="torch", host_memory=None, revision=None, no_disk=False,
         offload_room=False, module_order=None, sim=None, threads=0, chunk_bytes=0,
         staging_bytes=0, direct=False):
    """Loads a checkpoint: {name: tensor} in checkpoint order (a Loaded dict, with
    .report and .plan).

    framework: "torch" (torch.Tensor), "numpy" (numpy.ndarray; bfloat16 and float8 as
    their bytes unless ml_dtypes is installed), or "dlpack" (hoist's own tensors, with
    __dlpack__ and __dlpack_device__, for CuPy, JAX or NumPy). Tensors left on disk
    come as DiskTensor, read on demand. Every tensor keeps the memory it lies in
    alive: the memory goes when the last of them does.
    progress: True for a bar on a terminal, or a callable taking a Progress (return
    True to cancel). Ctrl-C cancels a load and raises KeyboardInterrupt with nothing
    left allocated."""
    with Checkpoint(path, revision) as ck:
        plan = ck.plan(device_map, max_memory, dtype, host_memory=host_memory,
                       no_disk=no_disk, offload_room=offload_room, module_order=module_order,
                       sim=sim)
        return plan.load(framework, progress, threads=threads, chunk_bytes=chunk_bytes,
                         staging_bytes=staging_bytes, direct=direct)


class _Stop(Exception):
    """The consumer of hoist.iter went away: the load stops."""


def iter(path, device_map="auto", max_memory=None, dtype=None, *,  # noqa: A001
         framework="torch", host_memory=None, revision=None, sim=None, threads=0):
    """Yields (name, tensor) as tensors land, in landing order, while the rest stream
    (the form vLLM's and SGLang's weight loaders consume). Each tensor owns its
    memory: a consumer that keeps them all is safe, and one that stops early (or is
    interrupted) cancels the rest of the load."""
    ck = Checkpoint(path, revision)
    plan = ck.plan(device_map, max_memory, dtype, host_memory=host_memory, sim=sim)
    conv = _Converter(framework, ck)
    names = list(ck._infos)
    landed = queue.SimpleQueue()
    stop = threading.Event()
    done = object()

    def on_landed(index, native):
        if stop.is_set():
            raise _Stop()
        landed.put((index, native))

    def on_progress(phase, d, total, seconds):
        return stop.is_set()

    def run():
        try:
            plan._p.load(threads=threads, progress=on_progress, landed=on_landed)
            landed.put((done, None))
        except BaseException as e:  # handed to the consumer
            landed.put((done, e))

    worker = threading.Thread(target=run, name="hoist.iter", daemon=True)
    worker.start()
    try:
        while True:
            index, native = landed.get()
            if index is done:
                if native is not None and not isinstance(native, _Stop):
                    if isinstance(native, CancelledError) and stop.is_set():
                        return
                    raise native
                return
            info = native.info()
            yield names[index], conv.one(native, info)
    finally:
        stop.set()
        worker.join()
