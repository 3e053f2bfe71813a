"""Tensors left on disk: read on demand, shaped like safetensors' safe_open().get_slice().

A DiskTensor is what hoist.load gives for a tensor its plan left in its file. It reads
nothing until asked: t[2:5] reads those rows only (a slice of the first dimension is a
byte range of the file), t[...] or t.to("cpu") the whole tensor, t.to("cuda:0") reads
it and copies it there. Code written for safetensors' slices (get_shape, get_dtype,
indexing) works unchanged. The host buffers they are read into, torch's or NumPy's, are
made here too."""

import math

from . import _compat

_ELEMENT_BITS = {"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
                 "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "I16": 16, "U16": 16, "F16": 16,
                 "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64,
                 "I64": 64, "U64": 64}


# --- host buffers, torch's or NumPy's ------------------------------------------------

def framework_dtype(framework, name):
    if framework == "torch":
        dtype, _ = _compat.torch_dtype(name)
        if dtype is None:
            import torch

            return torch.uint8
        return dtype
    if framework == "numpy":
        import numpy

        dtype, _ = _compat.numpy_dtype(name)
        return dtype if dtype is not None else numpy.dtype("uint8")
    return name


def _byte_shape(name, shape, nbytes):
    """The shape of a tensor's bytes: its last dimension counted in bytes (hoist's
    HOIST_DLPACK_BYTES), or one dimension of all of them."""
    if not shape:
        return (nbytes,)
    rows = numel(shape[:-1])
    row = (shape[-1] * _ELEMENT_BITS[name] + 7) // 8
    return tuple(shape[:-1]) + (row,) if rows * row == nbytes else (nbytes,)


def empty_host(framework, name, shape, nbytes):
    """An uninitialised host buffer of a tensor's bytes, and its address."""
    if framework == "torch":
        import torch

        out = torch.empty(_byte_shape(name, shape, nbytes), dtype=torch.uint8)
        return out, out.data_ptr()
    import numpy

    out = numpy.empty(_byte_shape(name, shape, nbytes), dtype=numpy.uint8)
    return out, out.__array_interface__["data"][0]


def finish_host(framework, name, raw, shape):
    """The bytes of raw (uint8) viewed as the tensor they are."""
    if framework == "torch":
        dtype, _ = _compat.torch_dtype(name)
        if dtype is None:
            return raw
        return raw.view(dtype).reshape(shape)
    dtype, _ = _compat.numpy_dtype(name)
    if dtype is None:
        return raw
    return raw.view(dtype).reshape(shape)


# --- the tensor on disk ------------------------------------------------------------------

class DiskTensor:
    """A tensor in its checkpoint file, read when asked for."""

    def __init__(self, native, name, file, offset, stored_dtype, dtype_name, shape, nbytes,
                 framework):
        self._native = native          # hoist._hoist.Tensor (keeps the model and checkpoint)
        self.name = name               # its name in the checkpoint
        self.file = file               # the shard holding it
        self.offset = offset           # absolute byte offset of its data there
        self.stored_dtype = stored_dtype  # as stored: "BF16"
        self.dtype_name = dtype_name   # as read (after the load's conversion)
        self.shape = tuple(shape)
        self.nbytes = nbytes           # as read
        self._framework = framework

    # safetensors' slice interface
    def get_shape(self):
        return list(self.shape)

    def get_dtype(self):
        return self.dtype_name

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    @property
    def dtype(self):
        return framework_dtype(self._framework, self.dtype_name)

    def __repr__(self):
        return (f"hoist.DiskTensor({self.name!r}, {self.dtype_name}, shape={self.shape}, "
                f"in {self.file} at {self.offset})")

    # reading
    def _read(self, offset, nbytes, shape):
        out, address = empty_host(self._framework, self.dtype_name, shape, nbytes)
        if nbytes:
            self._native.read_into(offset, address, nbytes)
        return finish_host(self._framework, self.dtype_name, out, shape)

    def read(self):
        """The whole tensor, in host memory."""
        return self._read(0, self.nbytes, self.shape)

    def __getitem__(self, index):
        rows = _leading_rows(index, self.shape)
        if rows is not None:
            start, stop, rest = rows
            row = self.nbytes // self.shape[0] if self.shape[0] else 0
            shape = (stop - start,) + tuple(self.shape[1:])
            part = self._read(start * row, (stop - start) * row, shape)
            return part[rest] if rest is not None else part
        return self.read()[index]

    def to(self, device=None, dtype=None):
        """The tensor read into host memory, then on `device` (torch only for GPUs)."""
        value = self.read()
        if device is None and dtype is None:
            return value
        if hasattr(value, "to"):
            return value.to(device=device, dtype=dtype)
        if device not in (None, "cpu"):
            raise ValueError(f"{self.name}: NumPy arrays live on cpu, not {device}")
        return value.astype(dtype) if dtype is not None else value

    def numpy(self):
        value = self.read()
        return value.numpy() if hasattr(value, "numpy") else value


def _leading_rows(index, shape):
    """(start, stop, rest) when index begins with a step-1 slice or an int of the first
    dimension (a byte range of the file), rest being what applies to the rows read;
    None otherwise."""
    if not shape:
        return None
    rest_index = ()
    if isinstance(index, tuple):
        if not index:
            return None
        first, rest_index = index[0], index[1:]
    else:
        first = index
    n = shape[0]
    if isinstance(first, int):
        i = first + n if first < 0 else first
        if not 0 <= i < n:
            raise IndexError(f"index {first} out of range for dimension of size {n}")
        return i, i + 1, (0,) + rest_index
    if isinstance(first, slice) and first.step in (None, 1):
        start, stop, _ = first.indices(n)
        stop = max(start, stop)
        if any(x is Ellipsis for x in rest_index):
            return None
        return start, stop, ((slice(None),) + rest_index) if rest_index else None
    return None


def numel(shape):
    return math.prod(shape) if shape else 1
