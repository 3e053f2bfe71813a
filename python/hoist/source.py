"""Tensor sources: where hoist.transformers gets a checkpoint's tensors from.

A source opens a checkpoint by path and returns a Checkpoint: the metadata of every
tensor (read from the headers alone), and load(placement), which returns the tensors
placed on cpu or a GPU as torch.Tensor objects living on that device, and for each
tensor placed on "disk" a DiskTensor saying where its bytes are in which file.

The glue in hoist.transformers sets those tensors into the model as they are: it
never copies one (a tensor whose dtype differs from what the model wants is
converted by the source, at load). So a source must hand out tensors that own, or
keep alive, their memory for as long as the model holds them.

SafetensorsSource is the stand-in used until hoist's C loader has a Python binding:
it reads with the safetensors package. hoist's binding will be another source of
the same shape (its tensors come through DLPack and hold a reference on the loaded
model, so its arenas live while any tensor does).
"""

import json
import os
import struct
from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Optional, Protocol, Tuple, Union

import torch

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"

# Spellings of the safetensors format -> torch dtypes this torch has. Types a torch
# lacks (unsigned 16..64-bit before 2.3, float8 before 2.1) are left out, and a
# tensor of one of them cannot be loaded by this torch.
_ST_DTYPES = {
    "BOOL": "bool", "U8": "uint8", "I8": "int8", "I16": "int16", "U16": "uint16",
    "I32": "int32", "U32": "uint32", "I64": "int64", "U64": "uint64", "F16": "float16",
    "BF16": "bfloat16", "F32": "float32", "F64": "float64", "C64": "complex64",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
}
TORCH_DTYPES = {k: getattr(torch, v) for k, v in _ST_DTYPES.items() if hasattr(torch, v)}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a checkpoint, from its shard's header."""

    name: str
    file: str          # path of the shard holding it
    offset: int        # absolute byte offset of its data in that file
    nbytes: int
    dtype: str         # the format's spelling: "BF16", "F32", ...
    shape: Tuple[int, ...]

    @property
    def torch_dtype(self) -> Optional[torch.dtype]:
        return TORCH_DTYPES.get(self.dtype)


@dataclass(frozen=True)
class DiskTensor:
    """A tensor left in its file: what a loader needs to fetch it later."""

    name: str          # its name in the checkpoint (the file's header)
    file: str
    offset: int        # absolute byte offset of its data
    nbytes: int
    dtype: str         # as stored
    shape: Tuple[int, ...]


Loaded = Union[torch.Tensor, DiskTensor]


class Checkpoint(Protocol):
    """An open checkpoint."""

    path: str  # the directory (or file) it was opened from

    def tensors(self) -> Mapping[str, TensorInfo]:
        """Every tensor, by checkpoint name, in file order."""

    def load(self, placement: Mapping[str, str],
             dtypes: Optional[Mapping[str, torch.dtype]] = None) -> Dict[str, Loaded]:
        """Loads the tensors named in placement ({name: "cpu" | "cuda:N" | "disk"}).
        A tensor for cpu or a GPU comes back as a torch.Tensor on that device, at
        dtypes[name] where given (converted while loading), else as stored; a tensor
        for "disk" comes back as a DiskTensor and is not read."""

    def close(self) -> None:
        """Releases the checkpoint; tensors already returned stay valid."""


Source = Callable[[str], Checkpoint]


def shard_files(path: str) -> Tuple[str, Dict[str, str]]:
    """(directory, {tensor name: shard path}) for a directory holding an index or a
    single model.safetensors, an index file, or a .safetensors file. Tensor names map
    to shards as the index says; a single file maps nothing here (its header does)."""
    if os.path.isdir(path):
        index = os.path.join(path, INDEX_NAME)
        single = os.path.join(path, SINGLE_NAME)
        if os.path.isfile(index):
            path = index
        elif os.path.isfile(single):
            return path, {"": single}
        else:
            raise FileNotFoundError(f"{path}: neither {INDEX_NAME} nor {SINGLE_NAME}")
    folder = os.path.dirname(os.path.abspath(path))
    if path.endswith(".safetensors"):
        return folder, {"": os.path.abspath(path)}
    with open(path) as f:
        weight_map = json.load(f)["weight_map"]
    return folder, {name: os.path.join(folder, shard) for name, shard in weight_map.items()}


def read_header(file: str) -> Dict[str, TensorInfo]:
    """The tensors of one .safetensors file, from its header, in data order."""
    with open(file, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"{file}: shorter than the 8-byte header length")
        (size,) = struct.unpack("<Q", raw)
        file_size = os.fstat(f.fileno()).st_size
        if size > file_size - 8:
            raise ValueError(f"{file}: header length {size} runs past the file ({file_size} bytes)")
        header = json.loads(f.read(size))
    header.pop("__metadata__", None)
    base = 8 + size
    out = {}
    for name, entry in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        begin, end = entry["data_offsets"]
        out[name] = TensorInfo(name=name, file=file, offset=base + begin, nbytes=end - begin,
                               dtype=entry["dtype"], shape=tuple(entry["shape"]))
    return out


class SafetensorsCheckpoint:
    """A sharded (or single-file) safetensors checkpoint read with safetensors."""

    def __init__(self, path: str):
        self.path, weight_map = shard_files(path)
        self._tensors: Dict[str, TensorInfo] = {}
        for file in dict.fromkeys(weight_map.values()):  # shards in index order, once
            self._tensors.update(read_header(file))
        missing = [n for n in weight_map if n and n not in self._tensors]
        if missing:
            raise ValueError(f"{self.path}: index names tensors no shard holds: {missing[:5]}")

    def tensors(self) -> Mapping[str, TensorInfo]:
        return self._tensors

    def load(self, placement, dtypes=None):
        from safetensors import safe_open

        dtypes = dtypes or {}
        out: Dict[str, Loaded] = {}
        by_file: Dict[Tuple[str, str], list] = {}
        for name, device in placement.items():
            info = self._tensors[name]
            if device == "disk":
                out[name] = DiskTensor(name=name, file=info.file, offset=info.offset,
                                       nbytes=info.nbytes, dtype=info.dtype, shape=info.shape)
            else:
                by_file.setdefault((info.file, device), []).append(name)
        for (file, device), names in by_file.items():
            with safe_open(file, framework="pt", device=device) as f:
                for name in names:
                    tensor = f.get_tensor(name)
                    want = dtypes.get(name)
                    if want is not None and tensor.dtype != want:
                        tensor = tensor.to(want)
                    out[name] = tensor
        return out

    def close(self):
        pass


def safetensors_source(path: str) -> SafetensorsCheckpoint:
    """The stand-in Source: opens path with SafetensorsCheckpoint."""
    return SafetensorsCheckpoint(path)
