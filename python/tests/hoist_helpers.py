"""What the binding's tests share: the reference data, the manifest's hashes, sim
memory and resident-set readings, a synthetic checkpoint made by `hoist synth`."""

import hashlib
import json
import os
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, "tests", "data")
REFERENCE = os.path.join(DATA, "reference")
TINY = os.path.join(REFERENCE, "tiny-qwen2-vl")
ALL_DTYPES = os.path.join(REFERENCE, "all_dtypes.safetensors")
HOIST_BIN = os.environ.get("HOIST_BIN", os.path.join(ROOT, "build", "hoist"))


def manifest(key):
    """{tensor: {"dtype", "shape", "sha256"}} of a manifest entry, or of every entry
    under a directory prefix ("tiny-qwen2-vl/")."""
    with open(os.path.join(REFERENCE, "manifest.json")) as f:
        root = json.load(f)
    out = {}
    for k, v in root.items():
        if k == key or (key.endswith("/") and k.startswith(key)):
            out.update(v["tensors"])
    return out


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def torch_bytes(t):
    """A torch tensor's raw bytes, whatever its dtype (0-d and empty included)."""
    import torch

    t = t.detach().contiguous().reshape(-1)
    return t.view(torch.uint8).numpy().tobytes() if t.numel() else b""


def numpy_bytes(a):
    import numpy

    return numpy.ascontiguousarray(a).tobytes()


def sim_memfds():
    """Simulated device memory this process holds: the sim backend's memfds."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += "memfd:hoist-sim" in os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    return n


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def synth(parent, *args):
    """A synthetic checkpoint written by `hoist synth DIR ARGS...` under parent."""
    out = tempfile.mkdtemp(prefix="synth-", dir=parent)
    subprocess.run([HOIST_BIN, "synth", out, *args], check=True, capture_output=True)
    return out
