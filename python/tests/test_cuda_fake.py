"""The CUDA path of the binding where no GPU is: hoist's cuda backend against the
strict fake driver (tests/fakecuda: it counts every breach of the driver API's rules
and prints each as a VIOLATION line), two fake GPUs. (Its leak check at exit is off:
the cuda backend keeps each device's primary context retained until the process
ends, `hoist load` included; that is the backend's to settle.)
What it checks: tensors on cuda:N export as kDLCUDA N in both capsule forms, their
bytes read back as the manifest says, and the torch path (whose CUDA import this
torch cannot do) runs with torch's from_dlpack mocked by a consumer that takes the
capsule as torch does and drops it later, on another thread, as a GPU torch would.
torch 2.x and transformers 5 on a real GPU: python/tests/test_transformers_glue.py's
GpuGlueTest on the GPU machine.
"""

import os
import subprocess
import sys
import unittest

from . import hoist_helpers as hh

FAKE = os.path.join(hh.ROOT, "build", "fakecuda")

CHILD = r'''
import ctypes, gc, hashlib, json, sys, threading
import hoist
from hoist import _compat

TINY = sys.argv[1]
want = {}
manifest = json.load(open(sys.argv[2]))
for k, v in manifest.items():
    if k.startswith("tiny-qwen2-vl/"):
        want.update(v["tensors"])

get_name = ctypes.pythonapi.PyCapsule_GetName
get_name.restype = ctypes.c_char_p
get_name.argtypes = [ctypes.py_object]
get_ptr = ctypes.pythonapi.PyCapsule_GetPointer
get_ptr.restype = ctypes.c_void_p
get_ptr.argtypes = [ctypes.py_object, ctypes.c_char_p]
set_name = ctypes.pythonapi.PyCapsule_SetName
set_name.argtypes = [ctypes.py_object, ctypes.c_char_p]

def device_of(address, versioned):
    tensor = address + (32 if versioned else 0)       # DLTensor within the struct
    return (ctypes.c_int32.from_address(tensor + 8).value,
            ctypes.c_int32.from_address(tensor + 12).value)

budgets = {0: 200_000, 1: 200_000, "cpu": 100_000}
got = hoist.load(TINY, max_memory=budgets, framework="dlpack")
kinds = {}
for name, t in got.items():
    if isinstance(t, hoist.DiskTensor):
        data = bytes(t.read())
        kinds["disk"] = kinds.get("disk", 0) + 1
    else:
        dev = t.info()[1]
        kinds[dev] = kinds.get(dev, 0) + 1
        if dev.startswith("cuda:"):
            index = int(dev[5:])
            assert t.__dlpack_device__() == (2, index), (name, t.__dlpack_device__())
            for versioned in (False, True):
                cap = t.__dlpack__(max_version=(1, 1) if versioned else None)
                cname = b"dltensor_versioned" if versioned else b"dltensor"
                assert get_name(cap) == cname
                assert device_of(get_ptr(cap, cname), versioned) == (2, index), name
        import numpy
        n = t.info()[4]
        buf = numpy.empty(n, numpy.uint8)
        t.read_into(0, buf.__array_interface__["data"][0], n)
        data = buf.tobytes()
    assert hashlib.sha256(data).hexdigest() == want[name]["sha256"], name
assert kinds.get("cuda:0") and kinds.get("cuda:1") and kinds.get("disk"), kinds
del got, t, cap
gc.collect()

# torch's CUDA import, mocked: take the capsule as torch does (rename it, keep the
# pointer), hand back a stand-in, and run the deleter later on another thread.
held = []

class Taken:
    def __init__(self, device):
        self.device = device

    def view(self, dtype):
        return self

    def reshape(self, shape):
        return self

def from_capsule(cap):
    name = get_name(cap)
    assert name == b"dltensor", name
    address = get_ptr(cap, name)
    set_name(cap, b"used_dltensor")
    held.append(address)
    return Taken(device_of(address, False))

_compat.torch_from_capsule = lambda: from_capsule
got = hoist.load(TINY, max_memory=budgets)
on_gpu = [t for t in got.values() if isinstance(t, Taken) and t.device[0] == 2]
assert on_gpu and {t.device[1] for t in on_gpu} == {0, 1}, [t.device for t in on_gpu]
del got
gc.collect()

def release():
    for address in held:
        deleter = ctypes.c_void_p.from_address(address + 56).value   # DLManagedTensor.deleter
        ctypes.CFUNCTYPE(None, ctypes.c_void_p)(deleter)(address)

worker = threading.Thread(target=release)
worker.start()
worker.join()
print("ok", len(held), sorted(kinds.items()))
'''


class FakeCuda(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(os.path.join(FAKE, "libcuda.so.1")):
            r = subprocess.run(["make", "-s", "-f", "Makefile", "-f",
                                "tests/fakecuda/fakecuda.mk", "fakecuda"], cwd=hh.ROOT,
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise unittest.SkipTest(f"the fake CUDA driver does not build: {r.stderr}")

    def test_cuda_tensors_export_as_kdlcuda_and_free_cleanly(self):
        env = dict(os.environ, LD_LIBRARY_PATH=FAKE, FAKECUDA_DEVICES="2")
        r = subprocess.run([sys.executable, "-c", CHILD, hh.TINY,
                            os.path.join(hh.REFERENCE, "manifest.json")],
                           cwd=os.path.dirname(hh.HERE), env=env, capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("ok ", r.stdout)
        self.assertNotIn("VIOLATION", r.stderr)


if __name__ == "__main__":
    unittest.main()
