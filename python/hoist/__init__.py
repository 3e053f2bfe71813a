"""hoist: load model checkpoints from storage straight into device memory.

    import hoist
    tensors = hoist.load("Qwen/Qwen2-VL-7B-Instruct", device_map="auto")   # {name: torch.Tensor}
    ck = hoist.open("model-dir"); print(ck.plan(max_memory={0: "20GiB", "cpu": "64GiB"}))
    for name, t in hoist.iter("model-dir"): ...                          # as tensors land
    model = hoist.transformers.from_pretrained(Qwen2VLForConditionalGeneration, path)

The C library does the work (libhoist, built into the extension hoist._hoist);
tensors reach torch, NumPy, CuPy and JAX through DLPack without a copy. Importing
hoist imports neither torch nor transformers.
"""

__version__ = "0.2.0"
# The extension's interface version this package speaks (HOIST_PY_ABI in _hoist.c).
_ABI = 1

try:
    from . import _hoist
except ImportError as e:  # pragma: no cover - what a broken install says
    raise ImportError(
        f"hoist's C extension (hoist/_hoist.abi3.so) could not be imported ({e}). In a "
        f"source tree, build it with `make python`; otherwise reinstall the package "
        f"(`pip install ./python` or `pip install .` from the repository root)") from e

if getattr(_hoist, "ABI", None) != _ABI or _hoist.header_version != __version__:
    raise ImportError(
        f"hoist's C extension ({_hoist.__file__}: interface {getattr(_hoist, 'ABI', '?')}, "
        f"library {_hoist.header_version}) does not match this package (interface {_ABI}, "
        f"version {__version__}): rebuild it with `make python` in the source tree, or "
        f"reinstall with `pip install ./python`")

from . import _core, _errors  # noqa: E402
from ._errors import (  # noqa: E402,F401
    CancelledError, DeviceError, Error, FileError, FormatError, InvalidArgumentError,
    NoDeviceError, NoSpaceError, NotFoundError, OutOfMemoryError)

_errors_by_status = dict(_errors.BY_STATUS)
_errors_by_status[3] = _errors._FileErrorFactory()
_hoist._set_errors(_errors_by_status)
_core._native = _hoist

from ._core import (  # noqa: E402,F401
    Checkpoint, Loaded, Plan, Progress, hub_resolve, iter, load, open)
from ._lazy import DiskTensor  # noqa: E402,F401

Tensor = _hoist.Tensor

__all__ = ["open", "load", "iter", "hub_resolve", "Checkpoint", "Plan", "Loaded", "Progress",
           "DiskTensor", "Tensor", "Error", "InvalidArgumentError", "OutOfMemoryError",
           "FileError", "NotFoundError", "FormatError", "NoDeviceError", "DeviceError",
           "CancelledError", "NoSpaceError"]


def __getattr__(name):  # hoist.transformers on first use: it imports transformers
    if name == "transformers":
        import importlib

        return importlib.import_module(".transformers", __name__)
    raise AttributeError(f"module 'hoist' has no attribute {name!r}")
