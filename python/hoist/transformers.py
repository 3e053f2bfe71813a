"""Loading Hugging Face transformers models with hoist.

    model = hoist.transformers.from_pretrained(Qwen2VLForConditionalGeneration, path,
                                               device_map="auto", torch_dtype=torch.bfloat16)

builds the model from its config with no weights allocated (accelerate's
init_empty_weights), describes it to the planner (its units in execution order,
the tensors of each, their bytes, the tie groups), loads by the plan, sets every
parameter and buffer to its loaded tensor without a copy, re-ties tied weights and
dispatches with accelerate's dispatch_model: layers planned for cpu or disk run as
accelerate runs them, disk tensors read from the original .safetensors shards
through an offload index (nothing is written to disk).

load_into(model, path, ...) does the same for a model the caller built on the meta
device.

Where the tensors come from is a Source (hoist.source): hoist's own loader by
default (hoist.open: one plan, one load, tensors through DLPack without copies), or
the safetensors stand-in (hoist.source.safetensors_source) that the glue was first
proven with.

The plan follows the model: its units (a _no_split_modules module, else the
smallest module holding tensors of its own) in execution order (the registration
order accelerate walks, with the input embeddings first and the output embeddings
last, as a forward pass runs them; or order= from trace_execution_order), its tie
groups on one device, filled by hoist's C planner along that order so each device
holds one run of it, keeping room for the largest unit on the first GPU and cpu as
accelerate does for executing offloaded layers.

Names. A checkpoint names tensors as the transformers that saved it did; a model
names them as the installed transformers builds it. They differ where transformers
renamed modules: Qwen2-VL checkpoints say `model.layers.N` and `visual.`, models of
4.52 and later say `model.language_model.layers.N` and `model.visual.`. NameMap
applies the installed version's renames (hoist._compat.KeyRenamer), so missing and
unexpected keys are reported as from_pretrained reports them.
"""

import collections
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import nn

from . import _compat
from ._core import Checkpoint as HoistCheckpoint
from ._core import compact, hub_resolve
from ._lazy import DiskTensor as HoistDiskTensor
from .source import Checkpoint, DiskTensor, Source, safetensors_source  # noqa: F401


def hoist_source(path):
    """The default Source: hoist's own loader (hoist.open)."""
    return HoistCheckpoint(path)


def _is_disk(value):
    return isinstance(value, (DiskTensor, HoistDiskTensor))

logger = logging.getLogger(__name__)

Device = Union[int, str]

IncompatibleKeys = collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


# --- names --------------------------------------------------------------------------

class NameMap:
    """Checkpoint tensor names <-> the model's state_dict names.

    to_module: checkpoint name -> model name, for every checkpoint tensor the model
    has (after the installed version's renames and the base-model prefix rule).
    to_checkpoint: the inverse. unexpected: checkpoint tensors the model lacks, by
    their renamed names (as from_pretrained reports them); missing: model tensors the
    checkpoint lacks."""

    def __init__(self, model, checkpoint_names, expected):
        renamer = _compat.KeyRenamer(model)
        needing = [k for k in checkpoint_names if renamer.needs_conversion(k)]
        if needing:
            raise NotImplementedError(
                f"{type(model).__name__}: these checkpoint tensors must be merged or split "
                f"to fit the model (a transformers weight conversion), which a load without "
                f"copies cannot do: {needing[:4]}{' ...' if len(needing) > 4 else ''}")
        expected = list(expected)
        expected_set = set(expected)
        renamed = {k: renamer(k) for k in checkpoint_names}

        # The base-model prefix rule of from_pretrained: a checkpoint of the base model
        # loads into a model with a head, and the other way round.
        prefix = getattr(model, "base_model_prefix", "") or ""
        if prefix:
            has = any(r.startswith(prefix) for r in renamed.values())
            wants = any(e.startswith(prefix) for e in expected)
            for k, r in renamed.items():
                if not has and wants and f"{prefix}.{r}" in expected_set:
                    renamed[k] = f"{prefix}.{r}"
                elif has and not wants and r.startswith(prefix + "."):
                    renamed[k] = r[len(prefix) + 1:]

        self.to_module = {k: r for k, r in renamed.items() if r in expected_set}
        self.to_checkpoint = {}
        for k, r in self.to_module.items():
            if r in self.to_checkpoint:
                raise ValueError(f"checkpoint tensors {self.to_checkpoint[r]!r} and {k!r} "
                                 f"both load into {r!r}")
            self.to_checkpoint[r] = k
        # Non-persistent buffers a checkpoint happens to hold (old RoPE inv_freq) are
        # not reported, as from_pretrained does not.
        buffers = {n for n, _ in model.named_buffers()}
        self.unexpected = sorted(r for k, r in renamed.items()
                                 if r not in expected_set and r not in buffers)
        self.missing = sorted(e for e in expected if e not in self.to_checkpoint)


# --- describing the model to the planner ---------------------------------------------

@dataclass
class Unit:
    """A part of the model that is placed whole.

    name: its module name; keys: its device_map keys (the module name, or for a
    module holding tensors of its own beside children, those tensors' names).
    tensors: its persistent tensors by model name. checkpoint_tensors: the checkpoint
    tensors loaded for it (a tied alias loads nothing of its own). prefixes: checkpoint
    name prefixes ("model.layers.0.") or exact names that cover checkpoint_tensors and
    nothing else of the checkpoint. nbytes: bytes its tensors take at their loaded
    dtypes, each tied tensor counted once, in its source's unit."""

    name: str
    keys: List[str]
    tensors: List[str]
    checkpoint_tensors: List[str] = field(default_factory=list)
    prefixes: List[str] = field(default_factory=list)
    nbytes: int = 0
    no_split: bool = False


@dataclass
class PlanRequest:
    """What the planner is given: units in execution order, and tie groups (units
    that must share a device because they share a tensor; each lists unit indices)."""

    units: List[Unit]
    tie_groups: List[List[int]]
    tied_tensors: List[List[str]]  # per tie group: model names, the loaded source first
    dtypes: Dict[str, torch.dtype]  # checkpoint name -> loaded dtype
    convert: Dict[str, str]  # checkpoint name -> loaded dtype, where not as stored
    order: str  # "inferred" (registration, embeddings first, head last) or "traced"

    def to_json(self):
        """The request as the C planner will take it (checkpoint names only)."""
        return json.dumps({
            "order": self.order,
            "units": [{"name": u.name, "prefixes": u.prefixes, "bytes": u.nbytes,
                       "no_split": u.no_split} for u in self.units],
            "tie_groups": self.tie_groups,
            "convert": self.convert,
        }, indent=1)


def _walk_units(model, no_split):
    """Units in module registration order (the order accelerate walks)."""
    units = []

    def tensors_of(module, prefix, recurse):
        """Persistent tensors (what a state_dict holds), by model name."""
        if recurse:
            return list(module.state_dict(prefix=prefix, keep_vars=True))
        own = [n for n, p in module._parameters.items() if p is not None]
        own += [n for n, b in module._buffers.items()
                if b is not None and n not in module._non_persistent_buffers_set]
        return [prefix + n for n in own]

    def walk(module, name):
        prefix = f"{name}." if name else ""
        if name and type(module).__name__ in no_split:
            units.append(Unit(name=name, keys=[name], tensors=tensors_of(module, prefix, True),
                              no_split=True))
            return
        children = list(module.named_children())
        own = tensors_of(module, prefix, False)
        has_buffers = any(True for _ in module.buffers(recurse=False))
        if not children:
            if own or has_buffers:
                units.append(Unit(name=name, keys=[name], tensors=own))
            return
        # A module with children holds tensors of its own rarely; they form a unit
        # keyed by their names. Its non-persistent buffers get no key: they follow
        # the module's key once compact() gives it one, else stay on cpu.
        if own:
            units.append(Unit(name=name, keys=own, tensors=own))
        for child_name, child in children:
            walk(child, prefix + child_name)

    walk(model, "")
    return units


def trace_execution_order(model, *args, **kwargs):
    """Unit names in the order a forward pass of a materialised model first calls
    them (modules it never calls last, in registration order). For describe(order=)."""
    units = _walk_units(model, _compat.no_split_module_classes(model))
    calls = []
    hooks = []
    for unit in units:
        module = model.get_submodule(unit.name) if unit.name else model
        hooks.append(module.register_forward_pre_hook(
            lambda m, a, n=unit.name: calls.append(n) if n not in calls else None))
    try:
        with torch.no_grad():
            model(*args, **kwargs)
    finally:
        for h in hooks:
            h.remove()
    return calls + [u.name for u in units if u.name not in calls]


def _prefixes(unit, to_checkpoint, checkpoint_names):
    """Checkpoint-name prefixes covering exactly the unit's checkpoint tensors: the
    common stem when every tensor keeps its module-relative suffix, else the names."""
    loaded = unit.checkpoint_tensors
    if not loaded:
        return []
    if unit.keys == [unit.name] and unit.name:
        stem = unit.name + "."
        stems = set()
        for model_name in unit.tensors:
            ckpt = to_checkpoint.get(model_name)
            if ckpt is None or ckpt not in loaded:
                continue
            suffix = model_name[len(stem):]
            stems.add(ckpt[:-len(suffix)] if ckpt.endswith("." + suffix) else None)
        if len(stems) == 1 and None not in stems:
            (p,) = stems
            covered = [n for n in checkpoint_names if n.startswith(p)]
            if sorted(covered) == sorted(loaded):
                return [p]
    return sorted(loaded)


def _module_name(model, module):
    for name, m in model.named_modules():
        if m is module:
            return name
    return None


def _execution_order(model, units):
    """The units in the order a forward pass runs them, as far as the model says
    without running: registration order (what accelerate walks), with the input
    embeddings moved first and the output embeddings last. For Qwen2-VL that is
    trace_execution_order's order exactly: embed_tokens, the vision tower, the
    layers, the norm, lm_head."""
    def owner(getter):
        try:
            module = getter()
        except (AttributeError, NotImplementedError):
            return None
        return _module_name(model, module) if module is not None else None

    first = owner(model.get_input_embeddings) if hasattr(model, "get_input_embeddings") else None
    last = owner(model.get_output_embeddings) if hasattr(model, "get_output_embeddings") \
        else None

    def covers(unit, name):
        return name is not None and (unit.name == name or name.startswith(unit.name + ".")
                                     if unit.name else True)

    head = [u for u in units if covers(u, first) and not covers(u, last)]
    tail = [u for u in units if covers(u, last) and u not in head]
    middle = [u for u in units if u not in head and u not in tail]
    return head + middle + tail


def describe(model, checkpoint: Checkpoint, order: Optional[Sequence[str]] = None):
    """(PlanRequest, NameMap) for loading checkpoint into the meta-device model.
    order: unit names in execution order (trace_execution_order); without it,
    registration order, which is what accelerate plans by."""
    infos = checkpoint.tensors()
    state = model.state_dict(keep_vars=True)
    names = NameMap(model, list(infos), state)

    units = _walk_units(model, _compat.no_split_module_classes(model))
    kind = "inferred"
    if order is None:
        units = _execution_order(model, units)
    else:
        rank = {name: i for i, name in enumerate(order)}
        units.sort(key=lambda u: rank.get(u.name, len(rank)))
        kind = "traced"

    # Tie groups: one tensor is loaded (the source) and set under every name.
    ties = []
    present = set(names.to_checkpoint)
    for group in _compat.tied_groups(model):
        source = _compat.tie_source(model, group, present)
        ties.append([source] + [n for n in group if n != source])
    alias_of = {n: g[0] for g in ties for n in g[1:]}

    dtypes = {}
    convert = {}
    for unit in units:
        for model_name in unit.tensors:
            tensor = state[model_name]
            if model_name in alias_of:
                continue
            unit.nbytes += tensor.numel() * tensor.element_size()
            ckpt = names.to_checkpoint.get(model_name)
            if ckpt is not None:
                unit.checkpoint_tensors.append(ckpt)
                dtypes[ckpt] = tensor.dtype
                if infos[ckpt].torch_dtype != tensor.dtype:
                    convert[ckpt] = str(tensor.dtype).replace("torch.", "")
        unit.prefixes = _prefixes(unit, names.to_checkpoint, infos)

    index_of = {}
    for i, unit in enumerate(units):
        for t in unit.tensors:
            index_of.setdefault(t, i)
    tie_groups = [sorted({index_of[n] for n in g}) for g in ties]
    request = PlanRequest(units=units, tie_groups=tie_groups, tied_tensors=ties, dtypes=dtypes,
                          convert=convert, order=kind)
    return request, names


# --- placement -------------------------------------------------------------------

def _normalize(device):
    if isinstance(device, torch.device):
        if device.type == "cuda":
            return device.index or 0
        return device.type
    if isinstance(device, str) and device.startswith("cuda"):
        return int(device.split(":")[1]) if ":" in device else 0
    return device


def _source_device(device):
    """The device string a Source takes: "cpu", "cuda:N", "disk"."""
    return f"cuda:{device}" if isinstance(device, int) else device


def plan_units(request: PlanRequest, max_memory=None):
    """A stand-in for hoist's C planner: fills the devices max_memory lists (default:
    every GPU's free memory and cpu's available memory), GPUs by ordinal, then cpu,
    then disk (always last, unbounded unless max_memory bounds it, as in accelerate),
    unit by unit in the request's order, never splitting a unit and keeping each tie
    group on the device of its first unit. Returns {device_map key: device}. No room
    is kept for executing offloaded layers (accelerate keeps the largest layer's
    size free on the first device)."""
    budgets = dict(_compat.max_memory(dict(max_memory) if max_memory is not None else None))
    order = sorted(d for d in budgets if isinstance(d, int))
    order += [d for d in ("cpu", "disk") if d in budgets]
    if "disk" not in budgets:
        order.append("disk")
        budgets["disk"] = float("inf")
    used = collections.Counter()
    tie_of = {i: g for g in request.tie_groups for i in g}
    placed = {}
    at = 0
    for i, unit in enumerate(request.units):
        if i in tie_of and any(j in placed for j in tie_of[i]):
            device = next(placed[j] for j in tie_of[i] if j in placed)
        else:
            while at < len(order) - 1 and used[order[at]] + unit.nbytes > budgets[order[at]]:
                at += 1
            device = order[at]
        placed[i] = device
        used[device] += unit.nbytes
    return {key: placed[i] for i, unit in enumerate(request.units) for key in unit.keys}


def _device_of(name, device_map):
    """The device the longest device_map key covering name gives (accelerate's rule)."""
    best, device = -1, None
    for key, value in device_map.items():
        if key == "" or name == key or name.startswith(key + "."):
            if len(key) > best:
                best, device = len(key), value
    if device is None:
        raise ValueError(f"device_map gives no device for {name!r}")
    return device


def device_map_for(request, device_map, max_memory=None, module_names=(), checkpoint=None):
    """The caller's device_map in accelerate's form ({module prefix: device}), from
    "auto" / "balanced" / "sequential" (planned, then compacted over module_names),
    a dict, or one device. With hoist's checkpoint the plan is hoist's C planner's
    (returned second), else the stand-in's (None)."""
    if device_map is None:
        device_map = "cpu"
    if isinstance(device_map, str) and device_map in ("auto", "balanced", "balanced_low_0",
                                                      "sequential"):
        if hasattr(checkpoint, "plan_units"):
            dtypes = {d for d in request.dtypes.values() if d.is_floating_point}
            dtype = dtypes.pop() if len(dtypes) == 1 else None
            placed, plan = checkpoint.plan_units(request, max_memory, dtype)
            return compact(placed, module_names), plan
        return compact(plan_units(request, max_memory), module_names), None
    if isinstance(device_map, dict):
        return {k: _normalize(v) for k, v in device_map.items()}, None
    return {"": _normalize(device_map)}, None


# --- setting tensors ------------------------------------------------------------

def _owner(model, name):
    module_name, _, attr = name.rpartition(".")
    return (model.get_submodule(module_name) if module_name else model), attr


def _set(model, name, tensor, parameter_cache):
    """Sets model tensor `name` to `tensor` itself (no copy). A parameter becomes an
    nn.Parameter over the tensor's storage; parameter_cache makes tied names share
    one Parameter object (it holds the tensor too, so an id is never reused)."""
    module, attr = _owner(model, name)
    if attr in module._parameters:
        old = module._parameters[attr]
        if type(old) is not nn.Parameter:
            raise TypeError(f"{name}: parameter of type {type(old).__name__} (quantized?) is "
                            "not supported")
        cached = parameter_cache.get(id(tensor))
        if cached is None:
            cached = (tensor, nn.Parameter(tensor, requires_grad=old.requires_grad))
            parameter_cache[id(tensor)] = cached
        module._parameters[attr] = cached[1]
    elif attr in module._buffers:
        module._buffers[attr] = tensor
    else:
        raise KeyError(f"{name}: no such parameter or buffer")


def _check(name, tensor, expected):
    if tuple(tensor.shape) != tuple(expected.shape):
        raise ValueError(f"{name}: checkpoint shape {tuple(tensor.shape)} does not match the "
                         f"model's {tuple(expected.shape)}")


@dataclass
class LoadResult:
    """What a load did: the keys as from_pretrained reports them, where each unit
    went, the disk offload index, and the tensors that had to be copied (converted
    to another dtype or moved after loading; a source that lands them as asked
    copies none)."""

    missing_keys: List[str]
    unexpected_keys: List[str]
    mismatched_keys: List[tuple]
    device_map: Dict[str, Device]
    offload_index: Dict[str, dict]
    copied: List[str]
    request: PlanRequest
    names: NameMap
    plan: object = None  # hoist's Plan where hoist planned (device changes, bytes per device)

    def loading_info(self):
        return {"missing_keys": self.missing_keys, "unexpected_keys": self.unexpected_keys,
                "mismatched_keys": self.mismatched_keys, "error_msgs": []}


def _filter(keys, patterns):
    import re

    return [k for k in keys if not any(re.search(p, k) for p in patterns)]


def _load(model, checkpoint, device_map, max_memory, order, offload_buffers):
    _compat.tie_weights(model)  # on meta: the groups describe() reports
    request, names = describe(model, checkpoint, order)
    device_map, plan = device_map_for(request, device_map, max_memory,
                                      [n for n, _ in model.named_modules()], checkpoint)
    state = model.state_dict(keep_vars=True)

    # Each tie group loads one tensor (its source) and sets it under every name.
    # Under 5, members the checkpoint holds with different values are not tied: such
    # groups load every present member, and tie only if the values are equal.
    groups = {g[0]: g for g in request.tied_tensors}
    separate = []
    if _compat.unties_differing_members():
        for g in request.tied_tensors:
            if sum(1 for n in g if n in names.to_checkpoint) > 1:
                separate.append(g)
                del groups[g[0]]
    alias = {n for g in groups.values() for n in g[1:]}

    placement = {}
    for unit in request.units:
        for model_name in unit.tensors:
            ckpt = names.to_checkpoint.get(model_name)
            if ckpt is not None and model_name not in alias:
                placement[ckpt] = _source_device(_device_of(model_name, device_map))
    loaded = checkpoint.load(placement, {k: state[names.to_module[k]].dtype for k in placement})

    parameter_cache = {}
    offload_index = {}
    copied = []

    # Tensors the checkpoint lacks (an alias whose source loads is not one): made on
    # their unit's device and initialised by the model's initialiser while the
    # loaded tensors are still unset, as from_pretrained initialises before loading.
    # Those of disk units are kept on cpu and handed to dispatch with the rest.
    covered = {n for g in groups.values() if g[0] in names.to_checkpoint for n in g}
    missing = [n for n in names.missing if n not in covered]
    extra_state = {}
    for name in missing:
        expected = state[name]
        device = _device_of(name, device_map)
        tensor = torch.empty(expected.shape, dtype=expected.dtype,
                             device="cpu" if device == "disk" else _source_device(device))
        _set(model, name, tensor, parameter_cache)
        if device == "disk":
            extra_state[name] = tensor
    for module_name in sorted({n.rpartition(".")[0] for n in missing}):
        _compat.init_weights(model, model.get_submodule(module_name) if module_name else model)

    for ckpt, value in loaded.items():
        model_name = names.to_module[ckpt]
        expected = state[model_name]
        _check(model_name, value, expected)
        members = groups.get(model_name, [model_name])
        if _is_disk(value):
            for member in members:
                offload_index[member] = _compat.offload_index_entry(value.file, value.name,
                                                                    expected.dtype)
            continue
        want = torch.device(placement[ckpt])
        if value.dtype != expected.dtype or value.device != want:
            # The source did not land it as asked: a copy.
            value = value.to(device=want, dtype=expected.dtype)
            copied.append(model_name)
        for member in members:
            _set(model, member, value, parameter_cache)

    for g in separate:
        values = [state[n] if n in offload_index else model.get_parameter(n)
                  for n in g if n in names.to_checkpoint]
        on_device = all(v.device.type != "meta" for v in values)
        if on_device and all(torch.equal(values[0], v) for v in values[1:]):
            for n in g:
                _set(model, n, values[0].data, parameter_cache)
        else:
            _compat.untie(model, g)

    ignore_missing, ignore_unexpected = _compat.ignored_key_patterns(model)
    missing = _filter(missing, ignore_missing)
    unexpected = _filter(names.unexpected, ignore_unexpected)
    if unexpected:
        logger.warning("Some weights of the checkpoint at %s were not used when initializing "
                       "%s: %s", checkpoint.path, type(model).__name__, unexpected)
    if missing:
        logger.warning("Some weights of %s were not initialized from the checkpoint at %s and "
                       "are newly initialized: %s", type(model).__name__, checkpoint.path,
                       missing)

    _compat.tie_weights(model)
    for g in groups.values():
        if not _tied(model, g):
            raise RuntimeError(f"tie_weights() left {g} untied")

    _compat.dispatch(model, device_map, offload_index, offload_buffers, extra_state)
    return LoadResult(missing_keys=missing, unexpected_keys=unexpected, mismatched_keys=[],
                      device_map=device_map, offload_index=offload_index, copied=copied,
                      plan=plan,
                      request=request, names=names)


def _tied(model, group):
    params = [model.get_parameter(n) for n in group]
    return all(p is params[0] for p in params[1:])


# --- entry points -----------------------------------------------------------------

def _resolve(path, kwargs):
    """A local directory for path: itself, or the Hub cache's snapshot of a model id,
    found offline (hoist's C resolver, as the hoist command finds it; with cache_dir,
    huggingface_hub's snapshot_download(local_files_only=True)). Never downloads."""
    if os.path.exists(path):
        return path
    hub = {k: kwargs.pop(k) for k in ("revision", "cache_dir", "local_files_only", "token")
           if k in kwargs}
    if hub.get("cache_dir") is None:
        return hub_resolve(path, hub.get("revision"))
    from huggingface_hub import snapshot_download

    hub["local_files_only"] = True
    hub.pop("token", None)
    return snapshot_download(repo_id=path, allow_patterns=["*.json", "*.safetensors"], **hub)


def from_pretrained(cls, path, device_map="auto", max_memory=None, torch_dtype=None, *,
                    source: Source = hoist_source, order=None, offload_buffers=False,
                    output_loading_info=False, **kwargs):
    """cls.from_pretrained(path, device_map=..., max_memory=..., torch_dtype=...) through
    hoist. torch_dtype: a torch dtype, its name, "auto", or None (what the installed
    transformers means by None). Other kwargs go to the config (its fields) and to
    the model's constructor, as from_pretrained passes them; attn_implementation is
    honoured. Returns the model, or (model, loading_info) with output_loading_info."""
    path = _resolve(path, kwargs)
    dtype = _compat.dtype_argument(kwargs, torch_dtype)
    if dtype is None:
        dtype = _compat.default_dtype()
    attn = kwargs.pop("attn_implementation", None)
    config, model_kwargs = _compat.load_config(cls, path, kwargs)
    cls = _compat.model_class(cls, config)
    checkpoint = source(path)
    try:
        dtype = _resolve_dtype(dtype, config, checkpoint)
        if attn is not None:
            model_kwargs["attn_implementation"] = attn
        config.name_or_path = path
        model = _compat.build_empty(cls, config, dtype, model_kwargs)
        for name, param in model.named_parameters():
            if any(m in name.split(".") for m in _compat.keep_in_fp32(model, dtype)):
                param.data = param.data.to(torch.float32)
        result = _load(model, checkpoint, device_map, max_memory, order, offload_buffers)
    finally:
        checkpoint.close()
    model.eval()
    generation = _compat.generation_config(model, path)
    if generation is not None:
        model.generation_config = generation
    model.hoist_load = result
    return (model, result.loading_info()) if output_loading_info else model


def load_into(model, path, device_map="auto", max_memory=None, *,
              source: Source = hoist_source, order=None, offload_buffers=False):
    """Loads the checkpoint at path into model, built by the caller with its parameters
    on the meta device (accelerate's init_empty_weights(); buffers real), at the dtypes
    of its parameters. Returns (missing_keys, unexpected_keys), as load_state_dict."""
    meta_buffers = [n for n, b in model.named_buffers() if b.device.type == "meta"]
    if meta_buffers:
        raise ValueError(f"buffers on the meta device cannot be loaded (non-persistent ones "
                         f"are computed when the model is built, not stored): {meta_buffers[:4]}"
                         f"; build the model with init_empty_weights(include_buffers=False)")
    checkpoint = source(_resolve(path, {}))
    try:
        result = _load(model, checkpoint, device_map, max_memory, order, offload_buffers)
    finally:
        checkpoint.close()
    model.hoist_load = result
    return IncompatibleKeys(result.missing_keys, result.unexpected_keys)


def _resolve_dtype(dtype, config, checkpoint):
    if dtype is None:
        return torch.get_default_dtype()
    if dtype == "auto":
        found = _compat.config_dtype(config)
        if found is None:
            for info in checkpoint.tensors().values():
                if info.torch_dtype is not None and info.torch_dtype.is_floating_point:
                    return info.torch_dtype
            return torch.get_default_dtype()
        return found
    if isinstance(dtype, str):
        return getattr(torch, dtype)
    return dtype
