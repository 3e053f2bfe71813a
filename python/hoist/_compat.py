"""Everything hoist does differently by transformers / accelerate / torch / NumPy
version, in one place.

Checked here against transformers 4.46.3, accelerate 0.34.2, torch 1.13 (CPU) and
NumPy 1.24. The branches for transformers >= 4.52 and 5, torch 2.x and NumPy 2 follow
those versions' source and documentation (see python/NOTES.md) and run on a machine
that has them; each says which version it is for. Every other module calls these
functions and never tests a version itself.

Nothing here is imported before it is needed: `import hoist` and hoist.load on cpu
with NumPy import neither torch nor transformers. TRANSFORMERS, ACCELERATE and TORCH
are the installed versions, read on first use (tests patch them).
"""

import contextlib
import re

from packaging.version import Version

_V4_52 = Version("4.52.0")
_V4_56 = Version("4.56.0")
_V5 = Version("5.0.0.dev0")


def _installed(name):
    cached = globals().get(name)
    if cached is None:
        module = __import__(name.lower())
        cached = Version(module.__version__.split("+")[0])
        globals()[name] = cached
    return cached


def __getattr__(name):  # TRANSFORMERS, ACCELERATE, TORCH on first use
    if name in ("TRANSFORMERS", "ACCELERATE", "TORCH"):
        return _installed(name)
    raise AttributeError(name)


def _tf():
    return _installed("TRANSFORMERS")


# --- tensors: hoist dtypes as torch and NumPy have them ----------------------------

# hoist dtype -> (torch dtype name, whether torch imports it through DLPack). Types
# torch imports natively in every version from 1.13 come as they are; the rest go as
# their bytes (uint8) and are viewed as the dtype on the torch side: bool (1.13
# refuses kDLBool), float8 (torch 2.1+ has the dtypes, DLPack import of them varies),
# unsigned 16..64-bit (torch 2.3+). Sub-byte floats stay packed uint8.
_TORCH = {
    "BOOL": ("bool", False), "U8": ("uint8", True), "I8": ("int8", True),
    "I16": ("int16", True), "I32": ("int32", True), "I64": ("int64", True),
    "U16": ("uint16", False), "U32": ("uint32", False), "U64": ("uint64", False),
    "F16": ("float16", True), "BF16": ("bfloat16", True), "F32": ("float32", True),
    "F64": ("float64", True), "C64": ("complex64", True),
    "F8_E4M3": ("float8_e4m3fn", False), "F8_E5M2": ("float8_e5m2", False),
    "F8_E8M0": ("float8_e8m0fnu", False),
    "F4": (None, False), "F6_E2M3": (None, False), "F6_E3M2": (None, False),
}


def torch_dtype(name):
    """(torch dtype or None, native): how a tensor of hoist dtype `name` reaches torch.
    None: its bytes (uint8, last dimension in bytes) stay as they are: sub-byte
    floats, and dtypes this torch lacks (unsigned 16..64-bit before torch 2.3, float8
    before 2.1, float8_e8m0fnu before 2.7)."""
    import torch

    attr, native = _TORCH[name]
    dtype = getattr(torch, attr, None) if attr else None
    if dtype is None:
        return None, False
    return dtype, native


def torch_from_capsule():
    """The fastest way from a legacy DLPack capsule to a torch tensor: torch's own C
    entry (1.13 and 2.x: torch._C._from_dlpack), else the public from_dlpack."""
    import torch

    return getattr(torch._C, "_from_dlpack", None) or torch.utils.dlpack.from_dlpack


def torch_dtype_name(dtype):
    """hoist's spelling of a torch dtype or a dtype name ("bfloat16", "bf16", "BF16")
    that loads convert to: F16, BF16 or F32."""
    text = str(dtype).replace("torch.", "").lower()
    table = {"float16": "F16", "half": "F16", "f16": "F16", "fp16": "F16",
             "bfloat16": "BF16", "bf16": "BF16", "float32": "F32", "float": "F32",
             "f32": "F32", "fp32": "F32"}
    if text not in table:
        raise ValueError(f"dtype {dtype!r}: hoist converts to float16, bfloat16 or float32")
    return table[text]


# hoist dtype -> NumPy dtype name, for the types NumPy has (imported through DLPack as
# they are; bool as bytes, which NumPy before 1.25 cannot import, viewed as bool).
_NUMPY = {"U8": "uint8", "U16": "uint16", "U32": "uint32", "U64": "uint64", "I8": "int8",
          "I16": "int16", "I32": "int32", "I64": "int64", "F16": "float16", "F32": "float32",
          "F64": "float64", "C64": "complex64"}
# bfloat16 and float8 through the ml_dtypes package where it is installed.
_ML_DTYPES = {"BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
              "F8_E8M0": "float8_e8m0fnu"}


def numpy_dtype(name):
    """(numpy dtype or None, native): None means the bytes stay uint8 (NumPy has no
    bfloat16, float8 or sub-byte floats; with ml_dtypes installed the first two are
    viewed as its types)."""
    import numpy

    if name in _NUMPY:
        return numpy.dtype(_NUMPY[name]), True
    if name == "BOOL":
        return numpy.dtype(bool), False
    if name in _ML_DTYPES:
        try:
            import ml_dtypes
        except ImportError:
            return None, False
        return numpy.dtype(getattr(ml_dtypes, _ML_DTYPES[name])), False
    return None, False


def numpy_from_dlpack(obj):
    """numpy.from_dlpack (NumPy 1.22+; it calls obj.__dlpack__ with or without
    max_version as its version does)."""
    import numpy

    return numpy.from_dlpack(obj)


# --- dtype --------------------------------------------------------------------

def default_dtype():
    """What from_pretrained(torch_dtype=None) means: the torch default (float32)
    through 4.x; "auto" (the checkpoint's dtype) from 5."""
    return "auto" if _tf() >= _V5 else None


def dtype_argument(kwargs, torch_dtype):
    """The dtype the caller asked for: torch_dtype, or dtype (its name from 4.56);
    removes dtype from kwargs."""
    dtype = kwargs.pop("dtype", None)
    if torch_dtype is not None and dtype is not None and torch_dtype != dtype:
        raise ValueError(f"torch_dtype={torch_dtype} and dtype={dtype} disagree")
    return torch_dtype if torch_dtype is not None else dtype


def config_dtype(config):
    """The dtype the config states: config.dtype from 4.56 (torch_dtype before)."""
    import torch

    names = ("dtype", "torch_dtype") if _tf() >= _V4_56 else ("torch_dtype",)
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return getattr(torch, value) if isinstance(value, str) else value
    return None


def keep_in_fp32(model, dtype):
    """Name components of modules whose tensors stay float32 at this dtype.
    4.x: _keep_in_fp32_modules, for float16 only. 4.5x and 5 also have
    _keep_in_fp32_modules_strict, for float16 and bfloat16."""
    names = []
    import torch

    if dtype == torch.float16:
        names += list(getattr(model, "_keep_in_fp32_modules", None) or [])
    if dtype in (torch.float16, torch.bfloat16):
        names += list(getattr(model, "_keep_in_fp32_modules_strict", None) or [])
    return names


# --- building the empty model ---------------------------------------------------

def model_class(cls, config):
    """The concrete model class: cls itself, or the class an Auto class (such as
    AutoModelForVision2Seq) picks for this config."""
    mapping = getattr(cls, "_model_mapping", None)
    if mapping is None:
        return cls
    from transformers.models.auto.auto_factory import _get_model_class

    return _get_model_class(config, mapping)


def load_config(cls, path, kwargs):
    """(config, model kwargs): the config at path with the kwargs that name config
    fields applied, as from_pretrained does, and the kwargs left for the model."""
    import transformers

    if getattr(cls, "_model_mapping", None) is not None:
        config_cls = transformers.AutoConfig
    else:
        config_cls = cls.config_class
    return config_cls.from_pretrained(path, return_unused_kwargs=True, **kwargs)


def _no_init_weights():
    for where in ("transformers.initialization", "transformers.modeling_utils"):
        try:
            module = __import__(where, fromlist=["no_init_weights"])
        except ImportError:
            continue
        if hasattr(module, "no_init_weights"):
            return module.no_init_weights()
    return contextlib.nullcontext()


def build_empty(cls, config, dtype, model_kwargs):
    """The model built from config with every parameter on the meta device and
    every buffer real, on cpu (init_empty_weights(include_buffers=False)), so
    non-persistent buffers such as RoPE inv_freq are computed as in from_pretrained
    and never need loading. Initialisers do not run."""
    from accelerate import init_empty_weights

    key = "dtype" if _tf() >= _V4_56 else "torch_dtype"
    with init_empty_weights(include_buffers=False), _no_init_weights():
        return cls._from_config(config, **{key: dtype}, **model_kwargs)


def no_split_module_classes(model):
    """Class names never split across devices: _no_split_modules gathered over the
    model's PreTrainedModel parts (4.46 and 5: _get_no_split_modules)."""
    if hasattr(model, "_get_no_split_modules"):
        return set(model._get_no_split_modules("auto"))
    return set(getattr(model, "_no_split_modules", None) or [])


def init_weights(model, module):
    """Runs the model's initialiser on one module (for tensors the checkpoint lacks)."""
    if hasattr(model, "_initialize_weights"):
        model._initialize_weights(module)
    else:
        model._init_weights(module)


# --- tied parameters --------------------------------------------------------------

def tied_groups(model):
    """Groups of parameter names that are one parameter (accelerate's
    find_tied_parameters: the same Parameter object under several names)."""
    from accelerate.utils import find_tied_parameters

    return [sorted(group) for group in find_tied_parameters(model)]


def _input_embedding_weight(model):
    try:
        embeddings = model.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        return None
    for name, module in model.named_modules():
        if module is embeddings:
            return f"{name}.weight" if name else "weight"
    return None


def tie_source(model, group, present):
    """The member of a tie group whose checkpoint tensor the tie takes.

    4.x: tie_weights() sets the output embeddings to the input embeddings, so the
    input embeddings' tensor wins (from_pretrained loads both and the tie keeps the
    input one). 5: all_tied_weights_keys maps target -> source. Both: where the
    source is absent from the checkpoint and another member is present, that member
    (5 swaps the same way; 4.46 would leave the source uninitialised).
    present: the members the checkpoint has."""
    source = None
    mapping = getattr(model, "all_tied_weights_keys", None)
    if isinstance(mapping, dict):
        for target in group:
            if mapping.get(target) in group:
                source = mapping[target]
                break
    if source is None:
        embedding = _input_embedding_weight(model)
        source = embedding if embedding in group else group[0]
    if source not in present:
        others = [name for name in group if name in present]
        if others:
            source = others[0]
    return source


def unties_differing_members():
    """5 does not tie members the checkpoint holds with different values (it warns
    and keeps both); 4.x ties them and keeps the source's."""
    return _tf() >= _V5


def untie(model, group):
    """Records that group is no longer tied (5 keeps the mapping it ties by)."""
    mapping = getattr(model, "all_tied_weights_keys", None)
    if isinstance(mapping, dict):
        for name in group:
            mapping.pop(name, None)


def tie_weights(model):
    """Ties the model's tied parameters (4.x and 5: tie_weights()); a plain module has
    nothing to tie. Needed before planning too: a model built under no_init_weights
    is not tied yet (4.46's post_init ties only when it initialises)."""
    import inspect

    if not hasattr(model, "tie_weights"):
        return
    if "recompute_mapping" in inspect.signature(model.tie_weights).parameters:
        # 5: tie by all_tied_weights_keys as from_pretrained does, so groups untie()
        # took out of it stay untied (recomputing would re-read the config).
        model.tie_weights(recompute_mapping=False)
    else:
        model.tie_weights()


# --- checkpoint names -> module names -------------------------------------------

class KeyRenamer:
    """Turns a checkpoint tensor name into the name transformers loads it under.

    4.46: the legacy fixes of _load_pretrained_model's _fix_key only.
    4.52 to 4.x: also the class's _checkpoint_conversion_mapping ({regex: repl}), the
    first pattern that matches wins (as key_mapping is applied there).
    5: the WeightRenaming entries of conversion_mapping.get_model_conversion_mapping()
    (the class mapping, the per-model_type registry and the legacy renames), each
    applied in turn, as core_model_loading.rename_source_key chains them. Its
    WeightConverter entries merge or split tensors (MoE experts); a checkpoint that
    needs one cannot be loaded without copies, and converters lists them.
    """

    def __init__(self, model):
        self.rules = []       # (compiled regex, replacement), first match wins
        self.converters = []  # source regexes of many-to-one conversions (5)
        self.legacy = _tf() < _V5
        self.chain = _tf() >= _V5
        if _tf() >= _V5:
            self._from_conversion_mapping(model)
        elif _tf() >= _V4_52:
            for pattern, repl in (getattr(type(model), "_checkpoint_conversion_mapping", None)
                                  or {}).items():
                self.rules.append((re.compile(pattern), repl))

    def _from_conversion_mapping(self, model):
        from transformers.conversion_mapping import get_model_conversion_mapping

        for transform in get_model_conversion_mapping(model):
            sources = transform.source_patterns
            targets = transform.target_patterns
            sources = [sources] if isinstance(sources, str) else list(sources)
            targets = [targets] if isinstance(targets, str) else list(targets)
            if type(transform).__name__ == "WeightRenaming":
                for source, target in zip(sources, targets):
                    self.rules.append((re.compile(source), target))
            else:
                self.converters += [re.compile(s.replace("*", r"\d+")) for s in sources]

    def __call__(self, key):
        for pattern, repl in self.rules:
            new, n = pattern.subn(repl, key, count=1)
            if n:
                key = new
                if not self.chain:
                    break
        return self._fix_legacy(key) if self.legacy else key

    @staticmethod
    def _fix_legacy(key):
        import torch

        # 4.46 _fix_key: any "beta"/"gamma" in the name (TF-era LayerNorm names), and
        # weight norm's two spellings, whichever this torch does not use.
        if "beta" in key:
            return key.replace("beta", "bias")
        if "gamma" in key:
            return key.replace("gamma", "weight")
        if hasattr(torch.nn.utils.parametrizations, "weight_norm"):
            if "weight_g" in key:
                return key.replace("weight_g", "parametrizations.weight.original0")
            if "weight_v" in key:
                return key.replace("weight_v", "parametrizations.weight.original1")
        else:
            if "parametrizations.weight.original0" in key:
                return key.replace("parametrizations.weight.original0", "weight_g")
            if "parametrizations.weight.original1" in key:
                return key.replace("parametrizations.weight.original1", "weight_v")
        return key

    def needs_conversion(self, key):
        return any(p.search(key) for p in self.converters)


def ignored_key_patterns(model):
    """(missing, unexpected): regexes of keys from_pretrained does not report
    (_keys_to_ignore_on_load_missing / _unexpected; the same in 4.x and 5)."""
    cls = type(model)
    return (list(getattr(cls, "_keys_to_ignore_on_load_missing", None) or []),
            list(getattr(cls, "_keys_to_ignore_on_load_unexpected", None) or []))


# --- dispatch ---------------------------------------------------------------------

def offload_index_entry(file, weight_name, dtype):
    """One entry of accelerate's offload index for a tensor read from its original
    .safetensors file (accelerate/utils/offload.py, OffloadedWeightsLoader: an
    entry with "safetensors_file" is read with safe_open(...).get_tensor(
    weight_name), then cast to "dtype"; 0.34 and 1.x)."""
    return {"safetensors_file": file, "weight_name": weight_name,
            "dtype": str(dtype).replace("torch.", "")}


def dispatch(model, device_map, offload_index, offload_buffers=False, extra_state=None):
    """accelerate's dispatch_model as from_pretrained calls it (4.46: device_map,
    offload_dir, offload_index, offload_buffers, skip_keys).

    extra_state: tensors of disk-placed modules that are in no file (initialised
    here because the checkpoint lacked them). accelerate serves offloaded weights
    from its state_dict argument before the index, and builds that argument itself
    (the cpu modules' tensors, when the main device is a GPU) only when it is not
    given, so it is built here the same way with those tensors added."""
    import inspect

    from accelerate import dispatch_model
    from accelerate.utils.offload import extract_submodules_state_dict

    kwargs = {"device_map": device_map, "offload_dir": None,
              "offload_index": offload_index or None, "offload_buffers": offload_buffers}
    if "skip_keys" in inspect.signature(dispatch_model).parameters:
        kwargs["skip_keys"] = getattr(model, "_skip_keys_device_placement", None)
    if extra_state:
        devices = set(device_map.values())
        main = "cpu" if devices <= {"cpu", "disk"} else next(
            d for d in device_map.values() if d not in ("cpu", "disk"))
        state = {}
        cpu_modules = [name for name, d in device_map.items() if d == "cpu"]
        if main != "cpu" and cpu_modules:
            state = extract_submodules_state_dict(model.state_dict(), cpu_modules)
        state.update(extra_state)
        kwargs["state_dict"] = state
    dispatch_model(model, **kwargs)


def max_memory(budgets):
    """accelerate's get_max_memory: {GPU ordinal | "cpu": bytes}, from the caller's
    {key: int or "20GiB"} or from the free memory of this machine."""
    from accelerate.utils import get_max_memory

    return get_max_memory(budgets)


def generation_config(model, path):
    """The model's generation config from path, as from_pretrained loads it."""
    import transformers

    if not model.can_generate():
        return None
    try:
        return transformers.GenerationConfig.from_pretrained(path)
    except OSError:
        return None
