"""Several loads at once from Python threads, each with its own handles: every byte
lands as the manifest says, errors stay with the thread that met them, and once the
threads are done the process holds the descriptors, threads and sim memory it held
before.

Run from python/:  ../.venv/bin/python -m unittest tests.test_concurrency -v
"""

import gc
import os
import threading
import unittest

from . import hoist_helpers as hh

import hoist

try:
    import torch
except ImportError:
    torch = None

SIM = {"devices": 2, "capacity": 64 << 20}
THREADS = 6
ROUNDS = 4


def held():
    """What the process holds: open descriptors, threads, sim device memory."""
    return (len(os.listdir("/proc/self/fd")), len(os.listdir("/proc/self/task")),
            hh.sim_memfds())


def check_bytes(tensors, want):
    """The names of tensors whose bytes differ from the manifest's sha256."""
    bad = [name for name, t in tensors if hh.sha256(hh.numpy_bytes(t)) != want[name]["sha256"]]
    return bad + sorted(set(want) - {name for name, _ in tensors})


@unittest.skipUnless(torch is not None, "needs torch")
class LoadsInThreads(unittest.TestCase):
    def test_loads_at_once_land_every_byte_and_leave_nothing(self):
        """Each thread loads in turn the tiny Qwen2-VL and the all-dtypes file, mapped,
        pageable, as NumPy arrays, through hoist.iter and onto a sim device, started
        together at a barrier; a bad file on one thread fails there alone."""
        want_tiny = hh.manifest("tiny-qwen2-vl/")
        want_all = hh.manifest("all_dtypes.safetensors")
        gc.collect()
        before = held()
        start = threading.Barrier(THREADS)
        failures = []
        missing = os.path.join(hh.REFERENCE, "no-such-checkpoint")

        def numpy_of(t):
            return t.detach().contiguous().reshape(-1).view(torch.uint8).numpy()

        def one_thread(k):
            try:
                start.wait()
                for r in range(ROUNDS):
                    kind = (k + r) % 5
                    if kind == 0:
                        got = hoist.load(hh.TINY, device_map="cpu")
                        bad = check_bytes([(n, numpy_of(t)) for n, t in got.items()], want_tiny)
                    elif kind == 1:
                        got = hoist.load(hh.ALL_DTYPES, device_map="cpu", host_memory="pageable")
                        bad = check_bytes([(n, numpy_of(t)) for n, t in got.items()], want_all)
                    elif kind == 2:
                        got = hoist.load(hh.ALL_DTYPES, device_map="cpu", framework="numpy")
                        bad = check_bytes(list(got.items()), want_all)
                    elif kind == 3:
                        got = None
                        bad = check_bytes([(n, numpy_of(t)) for n, t in
                                           hoist.iter(hh.TINY, device_map="cpu")], want_tiny)
                    else:
                        got = hoist.load(hh.TINY, device_map="sim:0", sim=SIM, framework="dlpack")
                        bad = [] if len(got) == len(want_tiny) else ["a tensor count"]
                    if bad:
                        failures.append(f"thread {k} round {r} kind {kind}: {bad[:3]}")
                    del got
                    with self.assertRaises(hoist.NotFoundError) as e:
                        hoist.load(missing, device_map="cpu")
                    if "no-such-checkpoint" not in str(e.exception):
                        failures.append(f"thread {k}: the error names another file: {e.exception}")
            except Exception as e:  # a failure on a thread: reported by the main one
                failures.append(f"thread {k}: {type(e).__name__}: {e}")

        threads = [threading.Thread(target=one_thread, args=(k,)) for k in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
            self.assertFalse(t.is_alive(), "a load thread did not finish in 120 s")
        self.assertEqual(failures, [])
        gc.collect()
        self.assertEqual(held(), before)


if __name__ == "__main__":
    unittest.main()
