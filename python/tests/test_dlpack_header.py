"""include/hoist_dlpack.h against the DLPack 1.1 specification and a real producer
and consumer of DLPack tensors (the installed torch).

The header is compiled into dlpack_probe.c as C11 (and checked as C++11), which
reports what the compiler made of it; the expected values below are the
specification's, typed in here independently of the header.

Run from python/:  ../.venv/bin/python -m unittest tests.test_dlpack_header -v
"""

import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
HEADER = os.path.join(ROOT, "include", "hoist_dlpack.h")
PROBE = os.path.join(HERE, "dlpack_probe.c")

# DLPack 1.1: include/dlpack/dlpack.h of dmlc/dlpack at v1.1.
SPEC_CONSTANTS = {
    "DLPACK_MAJOR_VERSION": 1,
    "DLPACK_MINOR_VERSION": 1,
    "DLPACK_FLAG_BITMASK_READ_ONLY": 1,
    "DLPACK_FLAG_BITMASK_IS_COPIED": 2,
    "DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED": 4,
    "kDLCPU": 1, "kDLCUDA": 2, "kDLCUDAHost": 3, "kDLOpenCL": 4, "kDLVulkan": 7,
    "kDLMetal": 8, "kDLVPI": 9, "kDLROCM": 10, "kDLROCMHost": 11, "kDLExtDev": 12,
    "kDLCUDAManaged": 13, "kDLOneAPI": 14, "kDLWebGPU": 15, "kDLHexagon": 16,
    "kDLMAIA": 17,
    "kDLInt": 0, "kDLUInt": 1, "kDLFloat": 2, "kDLOpaqueHandle": 3, "kDLBfloat": 4,
    "kDLComplex": 5, "kDLBool": 6,
    "kDLFloat8_e3m4": 7, "kDLFloat8_e4m3": 8, "kDLFloat8_e4m3b11fnuz": 9,
    "kDLFloat8_e4m3fn": 10, "kDLFloat8_e4m3fnuz": 11, "kDLFloat8_e5m2": 12,
    "kDLFloat8_e5m2fnuz": 13, "kDLFloat8_e8m0fnu": 14,
    "kDLFloat6_e2m3fn": 15, "kDLFloat6_e3m2fn": 16, "kDLFloat4_e2m1fn": 17,
}

# The natural layout on an LP64 target (Linux x86-64 / aarch64), where hoist runs.
LP64_LAYOUT = {
    "sizeof(DLPackVersion)": 8, "sizeof(DLDevice)": 8, "sizeof(DLDeviceType)": 4,
    "sizeof(DLDataType)": 4, "sizeof(DLTensor)": 48, "sizeof(DLManagedTensor)": 64,
    "sizeof(DLManagedTensorVersioned)": 80,
    "DLTensor.data": 0, "DLTensor.device": 8, "DLTensor.ndim": 16, "DLTensor.dtype": 20,
    "DLTensor.shape": 24, "DLTensor.strides": 32, "DLTensor.byte_offset": 40,
    "DLDataType.bits": 1, "DLDataType.lanes": 2,
    "DLManagedTensor.manager_ctx": 48, "DLManagedTensor.deleter": 56,
    "DLManagedTensorVersioned.manager_ctx": 8, "DLManagedTensorVersioned.deleter": 16,
    "DLManagedTensorVersioned.flags": 24, "DLManagedTensorVersioned.dl_tensor": 32,
}

STRICT = ["-Wall", "-Wextra", "-Werror", "-pedantic", "-I", os.path.join(ROOT, "include")]


def compiler(*names):
    for name in names:
        if shutil.which(name):
            return name
    return None


CC = compiler("cc", "gcc", "clang")
CXX = compiler("c++", "g++", "clang++")


def compile_source(cc, std, source, extra=()):
    """Compiles source (text) with the strict flags; returns (returncode, stderr)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.c" if "c++" not in std else "t.cc")
        with open(path, "w") as f:
            f.write(source)
        lang = "c++" if "c++" in std else "c"
        proc = subprocess.run([cc, "-std=" + std, *STRICT, *extra, "-x", lang,
                               "-fsyntax-only", path], capture_output=True, text=True)
        return proc.returncode, proc.stderr


class ProbeCase(unittest.TestCase):
    """Builds dlpack_probe.c once per test class; holds no tests itself."""

    @classmethod
    def setUpClass(cls):
        if not CC:
            raise unittest.SkipTest("no C compiler")
        cls.tmp = tempfile.mkdtemp(prefix="hoist-dlpack-")
        so = os.path.join(cls.tmp, "dlpack_probe.so")
        subprocess.run([CC, "-std=c11", *STRICT, "-shared", "-fPIC", "-o", so, PROBE],
                       check=True)
        cls.lib = ctypes.CDLL(so)
        cls.lib.probe_layout.restype = ctypes.c_char_p
        cls.lib.probe_make.restype = ctypes.c_void_p
        cls.lib.probe_make.argtypes = [ctypes.c_void_p, ctypes.c_uint8, ctypes.c_uint8,
                                       ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p]
        cls.lib.probe_make_versioned.restype = ctypes.c_void_p
        cls.lib.probe_make_versioned.argtypes = cls.lib.probe_make.argtypes + [ctypes.c_uint64]
        cls.lib.probe_read.argtypes = [ctypes.c_void_p] + [ctypes.c_void_p] * 3
        cls.lib.probe_read_versioned.argtypes = cls.lib.probe_read.argtypes
        cls.facts = {}
        for line in cls.lib.probe_layout().decode().splitlines():
            name, value = line.split("=")
            cls.facts[name] = int(value)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)


class HeaderTest(ProbeCase):
    def test_constants_are_the_specifications(self):
        for name, value in SPEC_CONSTANTS.items():
            self.assertEqual(self.facts[name], value, name)

    @unittest.skipUnless(ctypes.sizeof(ctypes.c_void_p) == 8 and sys.platform != "win32",
                         "layout table is for LP64")
    def test_layout_is_lp64_abi(self):
        for name, value in LP64_LAYOUT.items():
            self.assertEqual(self.facts[name], value, name)

    def test_strict_c11_and_twice(self):
        for cc in filter(None, {CC, compiler("gcc"), compiler("clang")}):
            rc, err = compile_source(cc, "c11", '#include "hoist_dlpack.h"\n'
                                     '#include "hoist_dlpack.h"\nint x = kDLCUDA;\n')
            self.assertEqual(rc, 0, cc + ": " + err)

    @unittest.skipUnless(CXX, "no C++ compiler")
    def test_strict_cxx11(self):
        src = ('#include "hoist_dlpack.h"\n#include <type_traits>\n'
               'static_assert(std::is_same<std::underlying_type<DLDeviceType>::type,'
               ' int32_t>::value, "32-bit device type");\n')
        rc, err = compile_source(CXX, "c++11", src)
        self.assertEqual(rc, 0, err)

    def test_older_dlpack_first_is_refused(self):
        # A pre-1.0 dlpack.h took the shared guard and has no major version.
        src = ('#define DLPACK_DLPACK_H_\n#define DLPACK_VERSION 80\n'
               '#include "hoist_dlpack.h"\n')
        rc, err = compile_source(CC, "c11", src)
        self.assertNotEqual(rc, 0)
        self.assertIn("major version", err)


try:
    import torch
    from torch.utils import dlpack as torch_dlpack
except ImportError:  # the header tests above still run
    torch = None

_get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_get_pointer.restype = ctypes.c_void_p
_get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
# PyCapsule_New keeps the name pointer: these must outlive every capsule.
_NAME = b"dltensor"
_NAME_VERSIONED = b"dltensor_versioned"


@unittest.skipUnless(torch is not None, "needs torch")
class TorchTest(ProbeCase):
    """A producer (torch) read through the header, and a consumer (torch) of
    tensors made through it."""

    def read(self, pointer, versioned=False):
        out = (ctypes.c_int64 * 12)()
        shape = (ctypes.c_int64 * 8)()
        strides = (ctypes.c_int64 * 8)()
        fn = self.lib.probe_read_versioned if versioned else self.lib.probe_read
        fn(pointer, out, shape, strides)
        ndim = out[3]
        return list(out), list(shape[:ndim]), list(strides[:ndim])

    # torch dtype -> (code, bits) as the specification assigns them.
    CODES = {
        "float32": (2, 32), "float16": (2, 16), "float64": (2, 64), "bfloat16": (4, 16),
        "int8": (0, 8), "int16": (0, 16), "int32": (0, 32), "int64": (0, 64),
        "uint8": (1, 8), "complex64": (5, 64),
    }

    def test_reads_torch_exports(self):
        for name, (code, bits) in self.CODES.items():
            dtype = getattr(torch, name)
            t = torch.zeros(4, 6, dtype=dtype)[1:, ::2]  # a strided view
            capsule = torch_dlpack.to_dlpack(t)
            out, shape, strides = self.read(_get_pointer(capsule, _NAME))
            self.assertEqual(out[1:3], [1, 0], name)  # kDLCPU, device 0
            self.assertEqual(out[4:7], [code, bits, 1], name)
            self.assertEqual(shape, [3, 3], name)
            self.assertEqual(strides, list(t.stride()), name)
            # torch puts the view's start in data and leaves byte_offset 0.
            self.assertEqual(out[0] + out[7], t.data_ptr(), name)

    def test_torch_takes_a_tensor_made_here(self):
        buf = (ctypes.c_float * 12)(*range(12))
        shape = (ctypes.c_int64 * 2)(3, 4)
        strides = (ctypes.c_int64 * 2)(4, 1)
        before = self.lib.probe_deleted()
        managed = self.lib.probe_make(ctypes.addressof(buf), 2, 32, 2, shape, strides)
        t = torch_dlpack.from_dlpack(_capsule_new(managed, _NAME, None))
        self.assertEqual(t.dtype, torch.float32)
        self.assertEqual(t.data_ptr(), ctypes.addressof(buf))  # a view, not a copy
        self.assertEqual(t.tolist()[2], [8.0, 9.0, 10.0, 11.0])
        t[0, 0] = 42.0
        self.assertEqual(buf[0], 42.0)
        self.assertEqual(self.lib.probe_deleted(), before)
        del t
        self.assertEqual(self.lib.probe_deleted(), before + 1)  # deleter ran once

    def test_torch_takes_bfloat16_made_here(self):
        raw = (ctypes.c_uint16 * 2)(0x3F80, 0xC000)  # 1.0, -2.0 in bfloat16
        shape = (ctypes.c_int64 * 1)(2)
        strides = (ctypes.c_int64 * 1)(1)
        managed = self.lib.probe_make(ctypes.addressof(raw), 4, 16, 1, shape, strides)
        t = torch_dlpack.from_dlpack(_capsule_new(managed, _NAME, None))
        self.assertEqual(t.dtype, torch.bfloat16)
        self.assertEqual(t.float().tolist(), [1.0, -2.0])
        del t

    def test_versioned_struct_reads_back(self):
        buf = (ctypes.c_int32 * 2)(7, 8)
        shape = (ctypes.c_int64 * 1)(2)
        strides = (ctypes.c_int64 * 1)(1)
        managed = self.lib.probe_make_versioned(ctypes.addressof(buf), 0, 32, 1, shape,
                                                strides, 1)
        out, shape_out, _ = self.read(managed, versioned=True)
        self.assertEqual(out[9:12], [1, 1, 1])  # version 1.1, READ_ONLY
        self.assertEqual(out[0], ctypes.addressof(buf))
        self.assertEqual(shape_out, [2])
        # Hand it to torch where torch reads versioned capsules (its __dlpack__ then
        # takes max_version); else free it here through its deleter.
        if _takes_max_version():
            t = torch_dlpack.from_dlpack(_capsule_new(managed, _NAME_VERSIONED, None))
            self.assertEqual(t.tolist(), [7, 8])
            del t
        else:
            deleter = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(
                ctypes.c_void_p.from_address(
                    managed + self.facts["DLManagedTensorVersioned.deleter"]).value)
            deleter(managed)


def _takes_max_version():
    try:
        torch.zeros(1).__dlpack__(max_version=(1, 0))
    except TypeError:
        return False
    return True


if __name__ == "__main__":
    unittest.main()
