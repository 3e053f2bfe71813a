"""hoist's Python binding against the reference files: tensors byte for byte as the
manifest says (torch and NumPy), both DLPack protocols with their capsule names and
deleters, memory back where it started once every tensor is gone, hoist.iter, disk
tensors read like safetensors' slices, errors that name the file, progress,
cancelling, Ctrl-C, the Hub cache, and an import that says what to rebuild.

Run from python/:  ../.venv/bin/python -m unittest tests.test_binding -v
"""

import ctypes
import gc
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from . import hoist_helpers as hh

import hoist

try:
    import torch
except ImportError:
    torch = None
try:
    import numpy
except ImportError:
    numpy = None

SIM = {"devices": 2, "capacity": 64 << 20}

_capsule_name = ctypes.pythonapi.PyCapsule_GetName
_capsule_name.restype = ctypes.c_char_p
_capsule_name.argtypes = [ctypes.py_object]
_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_capsule_rename = ctypes.pythonapi.PyCapsule_SetName
_capsule_rename.argtypes = [ctypes.py_object, ctypes.c_char_p]


class _Versioned(ctypes.Structure):
    """The head of DLManagedTensorVersioned: what any consumer may read."""

    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32),
                ("manager_ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p),
                ("flags", ctypes.c_uint64)]


class _Legacy(ctypes.Structure):
    """DLManagedTensor: DLTensor (48 bytes on LP64), then manager_ctx and deleter."""

    _fields_ = [("dl_tensor", ctypes.c_byte * 48), ("manager_ctx", ctypes.c_void_p),
                ("deleter", ctypes.c_void_p)]


def consume(capsule, versioned):
    """What a DLPack consumer does on taking a capsule and later dropping the tensor:
    renames it, then calls the deleter once."""
    name = b"dltensor_versioned" if versioned else b"dltensor"
    address = _capsule_pointer(capsule, name)
    _capsule_rename(capsule, b"used_" + name)
    cls = _Versioned if versioned else _Legacy
    head = cls.from_address(address)
    deleter = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(head.deleter)
    return lambda: deleter(address)


class ReferenceBytes(unittest.TestCase):
    @unittest.skipUnless(torch is not None, "needs torch")
    def test_torch_tensors_equal_the_manifest(self):
        for path, key in ((hh.TINY, "tiny-qwen2-vl/"), (hh.ALL_DTYPES, "all_dtypes.safetensors")):
            want = hh.manifest(key)
            for host_memory in (None, "pageable"):
                got = hoist.load(path, device_map="cpu", host_memory=host_memory)
                self.assertEqual(list(got), list(hoist.open(path).keys()))  # checkpoint order
                self.assertEqual(sorted(got), sorted(want))
                for name, t in got.items():
                    w = want[name]
                    self.assertEqual(hh.sha256(hh.torch_bytes(t)), w["sha256"], name)
                    dtype = getattr(torch, w["dtype"].replace("torch.", ""), None)
                    if dtype is not None and not w["dtype"].endswith("_x2"):
                        self.assertEqual(t.dtype, dtype, name)
                        self.assertEqual(list(t.shape), w["shape"], name)
                    else:  # this torch lacks the dtype: its bytes, last dimension in bytes
                        self.assertEqual(t.dtype, torch.uint8, name)
                self.assertEqual(got.report["mapped"], host_memory is None)

    @unittest.skipUnless(numpy is not None, "needs NumPy")
    def test_numpy_arrays_equal_the_manifest(self):
        want = hh.manifest("all_dtypes.safetensors")
        got = hoist.load(hh.ALL_DTYPES, device_map="cpu", framework="numpy")
        for name, a in got.items():
            self.assertIsInstance(a, numpy.ndarray, name)
            self.assertEqual(hh.sha256(hh.numpy_bytes(a)), want[name]["sha256"], name)
            kind = want[name]["dtype"].replace("torch.", "")
            if kind in ("bool", "uint8", "int8", "int16", "int32", "int64", "uint16",
                        "uint32", "uint64", "float16", "float32", "float64", "complex64"):
                self.assertEqual(a.dtype, numpy.dtype(kind), name)
                self.assertEqual(list(a.shape), want[name]["shape"], name)
            else:  # bfloat16, float8, float4: NumPy has no such type
                self.assertEqual(a.dtype, numpy.uint8, name)

    @unittest.skipUnless(torch is not None, "needs torch")
    def test_converting_loads_bfloat16_to_float32_exactly(self):
        got = hoist.load(hh.TINY, device_map="cpu", dtype=torch.float32)
        ref = hoist.load(hh.TINY, device_map="cpu")
        for name, t in got.items():
            self.assertEqual(t.dtype, torch.float32)
            self.assertTrue(torch.equal(t, ref[name].float()), name)
        self.assertFalse(got.report["mapped"])  # a conversion needs fresh memory

    @unittest.skipUnless(torch is not None, "needs torch")
    def test_mmap_views_are_private(self):
        tmp = tempfile.mkdtemp()
        try:
            path = os.path.join(tmp, "m.safetensors")
            shutil.copy(hh.ALL_DTYPES, path)
            with open(path, "rb") as f:
                before = f.read()
            t = hoist.load(path, device_map="cpu")["t_float32"]
            t += 1  # torch ignores read-only flags: the view must take the write
            with open(path, "rb") as f:
                self.assertEqual(f.read(), before)
            again = hoist.load(path, device_map="cpu")["t_float32"]
            self.assertTrue(torch.equal(t - 1, again))
        finally:
            shutil.rmtree(tmp)


class Dlpack(unittest.TestCase):
    def setUp(self):
        self.ck = hoist.open(hh.TINY)

    def model(self, **plan):
        return self.ck.plan(**plan)._p.load()

    def test_capsule_names_by_max_version(self):
        m = self.model(device_map="cpu")
        t = m.tensor(0)
        self.assertEqual(t.__dlpack_device__(), (1, 0))
        self.assertEqual(_capsule_name(t.__dlpack__()), b"dltensor")
        self.assertEqual(_capsule_name(t.__dlpack__(max_version=(0, 8))), b"dltensor")
        cap = t.__dlpack__(max_version=(1, 0))
        self.assertEqual(_capsule_name(cap), b"dltensor_versioned")
        head = _Versioned.from_address(_capsule_pointer(cap, b"dltensor_versioned"))
        self.assertEqual((head.major, head.minor, head.flags), (1, 0, 0))
        cap = t.__dlpack__(stream=None, max_version=(1, 3), dl_device=(1, 0), copy=False)
        head = _Versioned.from_address(_capsule_pointer(cap, b"dltensor_versioned"))
        self.assertEqual((head.major, head.minor), (1, 1))
        with self.assertRaises(BufferError):
            t.__dlpack__(dl_device=(2, 0))
        with self.assertRaises(BufferError):
            t.__dlpack__(copy=True)

    @unittest.skipUnless(torch is not None, "needs torch")
    def test_torch_renames_the_capsule_it_takes(self):
        m = self.model(device_map="cpu")
        cap = m.tensor(3).__dlpack__()
        x = torch.utils.dlpack.from_dlpack(cap)
        self.assertEqual(_capsule_name(cap), b"used_dltensor")
        self.assertEqual(x.data_ptr(), m.describe()[3][5])

    def test_deleters_free_the_memory_once(self):
        """Capsules on sim memory (the extension makes them; __dlpack__ refuses sim):
        unconsumed ones free through the capsule's destructor, consumed ones through
        the deleter the consumer calls; the model's memory goes with the last."""
        start = hh.sim_memfds()
        for versioned in (False, True):
            m = self.model(device="sim:0", device_map=None, sim=SIM)
            self.assertGreater(hh.sim_memfds(), start)
            native = m.tensor(1)
            caps = m.capsules([0, 1, 2], [False, True, False], versioned)
            consumed = m.capsules([5], [False], versioned)[0]
            release = consume(consumed, versioned)
            del m, native
            gc.collect()
            self.assertGreater(hh.sim_memfds(), start)
            del caps  # destructors of unconsumed capsules run their deleters
            gc.collect()
            self.assertGreater(hh.sim_memfds(), start)  # the consumer still holds one
            del consumed
            gc.collect()
            self.assertGreater(hh.sim_memfds(), start)  # a used capsule frees nothing
            release()
            self.assertEqual(hh.sim_memfds(), start)


class Lifetime(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hoist-life-")
        cls.big = hh.synth(cls.tmp, "--layers", "4")  # about 77 MB

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_memory_back_at_the_start_over_many_loads(self):
        sim = {"devices": 2, "capacity": 256 << 20}
        gc.collect()
        start_fds = hh.sim_memfds()
        kept = hoist.load(self.big, device_map="sim:0", sim=sim, framework="dlpack")
        del kept
        gc.collect()
        start_rss = hh.rss_bytes()
        size = hoist.open(self.big).total_bytes
        for i in range(12):
            # sim memory through hoist's own tensors, host memory through torch or NumPy
            on_sim = hoist.load(self.big, device_map="sim:0", sim=sim, framework="dlpack")
            self.assertGreater(hh.sim_memfds(), start_fds)
            framework = "torch" if torch is not None and i % 2 else "numpy"
            on_cpu = hoist.load(self.big, device_map="cpu", host_memory="pageable",
                                framework=framework)
            one = next(iter(on_cpu.values()))
            self.assertGreater(hh.rss_bytes(), start_rss + size // 2)
            del on_sim, on_cpu
            gc.collect()
            self.assertGreater(hh.rss_bytes(), start_rss + 1)  # `one` keeps its arena
            del one
            gc.collect()
            self.assertEqual(hh.sim_memfds(), start_fds, i)
            self.assertLess(hh.rss_bytes(), start_rss + size // 4, i)

    @unittest.skipUnless(torch is not None, "needs torch")
    def test_an_empty_tensor_in_torch_lets_its_model_go(self):
        """torch before 2.3 never calls the deleter of a DLPack tensor whose data is
        NULL: an empty tensor exported so would keep its model, here the descriptor
        its mapping holds."""
        def open_on_file():
            return sum(os.path.realpath(f"/proc/self/fd/{fd}") == hh.ALL_DTYPES
                       for fd in os.listdir("/proc/self/fd")
                       if os.path.exists(f"/proc/self/fd/{fd}"))
        gc.collect()
        start = open_on_file()
        for host_memory in (None, "pageable"):
            got = hoist.load(hh.ALL_DTYPES, device_map="cpu", host_memory=host_memory)
            empty = got["empty_f16"]
            self.assertEqual((empty.numel(), list(empty.shape)), (0, [0, 4]))
            self.assertGreater(open_on_file(), start)
            del got, empty
            gc.collect()
            self.assertEqual(open_on_file(), start, host_memory)

    def test_a_tensor_outlives_its_checkpoint_and_model(self):
        tensors = hoist.load(hh.TINY, device_map="cpu", host_memory="pageable",
                             framework="dlpack")
        name = "model.layers.1.mlp.up_proj.weight"
        keep = tensors[name]
        del tensors
        gc.collect()
        if numpy is not None:
            a = numpy.from_dlpack(keep.bytes_view())  # bfloat16: NumPy takes its bytes
            ref = hoist.load(hh.TINY, device_map="cpu", framework="numpy")[name]
            self.assertEqual(a.tobytes(), ref.tobytes())


class Iterate(unittest.TestCase):
    @unittest.skipUnless(torch is not None, "needs torch")
    def test_iter_yields_every_tensor_once_equal_to_load(self):
        ref = hoist.load(hh.TINY, device_map="cpu")
        seen = {}
        for name, t in hoist.iter(hh.TINY, device_map="cpu"):
            self.assertNotIn(name, seen)
            seen[name] = t
        self.assertEqual(sorted(seen), sorted(ref))
        for name, t in seen.items():
            self.assertTrue(torch.equal(t, ref[name]), name)

    def test_stopping_early_cancels_and_frees(self):
        start = hh.sim_memfds()
        it = hoist.iter(hh.TINY, device_map="sim:0", sim=SIM, framework="dlpack")
        first = [next(it) for _ in range(3)]
        it.close()
        self.assertEqual(len(first), 3)
        del first, it
        gc.collect()
        self.assertEqual(hh.sim_memfds(), start)

    def test_iter_errors_reach_the_consumer(self):
        with self.assertRaises(hoist.NoSpaceError):
            list(hoist.iter(hh.TINY, device_map="sim:0", sim={"capacity": 1000}))


class Disk(unittest.TestCase):
    def test_disk_tensors_read_like_safetensors_slices(self):
        from safetensors import safe_open

        if torch is None:
            self.skipTest("needs torch")
        got = hoist.load(hh.TINY, device_map="disk")
        name = "model.layers.0.mlp.up_proj.weight"
        t = got[name]
        self.assertIsInstance(t, hoist.DiskTensor)
        self.assertEqual(got.report["moved_bytes"], 0)
        shard = hoist.open(hh.TINY).infos()[name].file
        with safe_open(shard, framework="pt") as f:
            ref = f.get_slice(name)
            self.assertEqual(t.get_shape(), ref.get_shape())
            self.assertEqual(t.get_dtype(), ref.get_dtype())
            for index in (slice(2, 5), 3, (slice(None), slice(1, 3)), (slice(1, 4), 2),
                          slice(-3, None), (Ellipsis, 0)):
                self.assertTrue(torch.equal(t[index], ref[index]), index)
            self.assertTrue(torch.equal(t.to("cpu"), f.get_tensor(name)))
            self.assertEqual(len(t), ref.get_shape()[0])
        self.assertEqual(t.dtype, torch.bfloat16)
        self.assertEqual(t.to(dtype=torch.float32).dtype, torch.float32)

    @unittest.skipUnless(numpy is not None, "needs NumPy")
    def test_disk_tensors_with_numpy(self):
        got = hoist.load(hh.ALL_DTYPES, device_map="disk", framework="numpy")
        ref = hoist.load(hh.ALL_DTYPES, device_map="cpu", framework="numpy")
        for name, t in got.items():
            self.assertEqual(t.read().tobytes(), ref[name].tobytes(), name)


class Errors(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hoist-err-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_missing_file(self):
        path = os.path.join(self.tmp, "absent.safetensors")
        with self.assertRaises(FileNotFoundError) as cm:
            hoist.load(path)
        self.assertIsInstance(cm.exception, hoist.Error)
        self.assertIn(path, str(cm.exception))
        self.assertEqual(cm.exception.status, 3)

    def test_bad_files_raise_naming_the_file(self):
        path = os.path.join(self.tmp, "bad.safetensors")
        header = b'{"w":{"dtype":"F32","shape":[4,4],"data_offsets":[0,12]}}'
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(header)) + header + bytes(12))
        with self.assertRaises(ValueError) as cm:
            hoist.open(path)
        self.assertIsInstance(cm.exception, hoist.FormatError)
        self.assertIn("bad.safetensors", str(cm.exception))
        self.assertIn('tensor "w"', str(cm.exception))
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", 1 << 40))
        with self.assertRaises(hoist.FormatError) as cm:
            hoist.load(path)
        self.assertIn("bad.safetensors", str(cm.exception))
        # an index naming a shard that is not there
        shard_dir = os.path.join(self.tmp, "model")
        os.mkdir(shard_dir)
        with open(os.path.join(shard_dir, "model.safetensors.index.json"), "w") as f:
            json.dump({"weight_map": {"w": "model-00001-of-00001.safetensors"}}, f)
        with self.assertRaises(FileNotFoundError) as cm:
            hoist.open(shard_dir)
        self.assertIn("model-00001-of-00001.safetensors", str(cm.exception))

    def test_bad_arguments(self):
        with self.assertRaises(ValueError) as cm:
            hoist.load(hh.TINY, max_memory={"cpu": "lots"})
        self.assertIn("lots", str(cm.exception))
        with self.assertRaises(ValueError):
            hoist.load(hh.TINY, device_map="gpu")
        with self.assertRaises(ValueError):
            hoist.load(hh.TINY, dtype="int8")
        with self.assertRaises(MemoryError) as cm:
            hoist.load(hh.TINY, device_map="auto", max_memory={"cpu": 1000}, no_disk=True)
        self.assertIsInstance(cm.exception, hoist.NoSpaceError)
        with self.assertRaises(ValueError) as cm:  # a map that leaves tensors out
            hoist.load(hh.TINY, device_map={"model": "cpu"})
        self.assertIn("lm_head", str(cm.exception))


class Progress(unittest.TestCase):
    def test_callback_sees_the_phases_and_can_cancel(self):
        seen = []
        got = hoist.load(hh.TINY, device_map="sim:0", sim=SIM, framework="dlpack",
                         progress=lambda p: seen.append(p) and False)
        self.assertTrue(any(p.phase == "stream" for p in seen))
        last = [p for p in seen if p.phase == "stream"][-1]
        self.assertEqual(last.bytes_total, 529664)
        self.assertEqual(set(got.report["seconds"]),
                         {"open", "plan", "allocate", "stream", "finalize"})
        start = hh.sim_memfds()
        with self.assertRaises(hoist.CancelledError):
            hoist.load(hh.TINY, device_map="sim:0", sim=SIM, progress=lambda p: True)
        self.assertEqual(hh.sim_memfds(), start)

    def test_an_exception_in_the_callback_propagates(self):
        def boom(p):
            raise LookupError("from the callback")

        with self.assertRaisesRegex(LookupError, "from the callback"):
            hoist.load(hh.TINY, device_map="cpu", progress=boom)

    def test_ctrl_c_cancels_with_nothing_left(self):
        if threading.current_thread() is not threading.main_thread():
            self.skipTest("signals reach the main thread only")
        tmp = tempfile.mkdtemp(prefix="hoist-int-")
        try:
            big = hh.synth(tmp, "--layers", "2")
            sim = {"devices": 1, "capacity": 1 << 30, "bytes_per_sec": 20e6}  # seconds
            start = hh.sim_memfds()
            timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
            timer.start()
            t0 = time.monotonic()
            with self.assertRaises(KeyboardInterrupt):
                # a small ring: what is queued when Ctrl-C comes drains at the cap
                hoist.load(big, device_map="sim:0", sim=sim, framework="dlpack",
                           chunk_bytes=1 << 20, staging_bytes=4 << 20)
            self.assertLess(time.monotonic() - t0, 1.5)
            timer.join()
            gc.collect()
            self.assertEqual(hh.sim_memfds(), start)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class PlanAndReport(unittest.TestCase):
    def test_plan_as_accelerate_writes_it(self):
        ck = hoist.open(hh.TINY)
        plan = ck.plan(max_memory={"cpu": 300_000}, offload_room=False)
        self.assertEqual(set(plan.device_map.values()), {"cpu", "disk"})
        self.assertEqual(plan.device_map["model.embed_tokens"], "cpu")
        self.assertEqual(plan.device_map["lm_head"], "disk")
        self.assertEqual(plan.device_changes, 1)
        self.assertLessEqual(plan.bytes_per_device["cpu"], 300_000)
        self.assertGreater(plan.predicted_seconds["cold"], plan.predicted_seconds["warm"])
        self.assertIn("device change", str(plan))
        self.assertEqual(plan.json()["order"]["device_changes"], 1)
        names = [u[0] for u in plan.units]
        self.assertEqual(names[0], "model.embed_tokens")
        self.assertTrue(names[1].startswith("visual."))
        self.assertEqual(names[-1], "lm_head")
        # devices as torch spells them, budgets as accelerate does
        one = ck.plan(device_map={"": "cpu"})
        self.assertEqual(one.device_map, {"": "cpu"})
        sim = ck.plan(device="sim", device_map="sequential",
                      max_memory={"sim:0": "200KB", "sim:1": 200_000, "cpu": "1MB"}, sim=SIM)
        self.assertEqual(set(sim.device_map.values()), {"sim:0", "sim:1", "cpu"})

    def test_report_dict(self):
        got = hoist.load(hh.TINY, device_map="cpu", host_memory="pageable", framework="dlpack")
        r = got.report
        self.assertEqual(r["tensors"], 70)
        self.assertEqual(r["moved_bytes"], 529664)
        self.assertEqual(r["devices"][0]["device"], "cpu")
        self.assertIn("stream", r["text"])


class HubCache(unittest.TestCase):
    def test_model_ids_resolve_offline(self):
        tmp = tempfile.mkdtemp(prefix="hoist-hub-")
        old = {k: os.environ.get(k) for k in ("HF_HUB_CACHE", "HF_HOME")}
        try:
            repo = os.path.join(tmp, "models--hoist--tiny")
            commit = "1234567890abcdef1234567890abcdef12345678"
            shutil.copytree(hh.TINY, os.path.join(repo, "snapshots", commit))
            os.makedirs(os.path.join(repo, "refs"))
            with open(os.path.join(repo, "refs", "main"), "w") as f:
                f.write(commit)
            os.environ["HF_HUB_CACHE"] = tmp
            got = hoist.load("hoist/tiny", device_map="cpu", framework="dlpack")
            self.assertEqual(len(got), 70)
            self.assertEqual(len(hoist.load("hoist/tiny", revision=commit, framework="dlpack")),
                             70)
            self.assertTrue(hoist.hub_resolve("hoist/tiny").endswith(commit))
            with self.assertRaises(FileNotFoundError) as cm:
                hoist.open("hoist/absent")
            self.assertIn(os.path.join(tmp, "models--hoist--absent"), str(cm.exception))
            self.assertIn("never downloads", str(cm.exception))
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            shutil.rmtree(tmp, ignore_errors=True)


class Import(unittest.TestCase):
    def run_import(self, edit):
        tmp = tempfile.mkdtemp(prefix="hoist-imp-")
        try:
            pkg = os.path.join(tmp, "hoist")
            shutil.copytree(os.path.dirname(hoist.__file__), pkg,
                            ignore=shutil.ignore_patterns("__pycache__"))
            edit(pkg)
            return subprocess.run([sys.executable, "-c", "import hoist"], cwd=tmp,
                                  capture_output=True, text=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_missing_extension_says_what_to_build(self):
        def drop(pkg):
            for name in os.listdir(pkg):
                if name.startswith("_hoist") and name.endswith(".so"):
                    os.remove(os.path.join(pkg, name))

        r = self.run_import(drop)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("could not be imported", r.stderr)
        self.assertIn("make python", r.stderr)

    def test_mismatched_extension_says_what_to_rebuild(self):
        def bump(pkg):
            path = os.path.join(pkg, "__init__.py")
            with open(path) as f:
                text = f.read().replace('__version__ = "', '__version__ = "9.', 1)
            with open(path, "w") as f:
                f.write(text)

        r = self.run_import(bump)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("does not match this package", r.stderr)
        self.assertIn("rebuild", r.stderr)

    def test_import_hoist_imports_neither_torch_nor_transformers(self):
        code = ("import sys, hoist; print('torch' in sys.modules, "
                "'transformers' in sys.modules)")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           cwd=os.path.dirname(os.path.dirname(hoist.__file__)))
        self.assertEqual(r.stdout.split(), ["False", "False"], r.stderr)


if __name__ == "__main__":
    unittest.main()
