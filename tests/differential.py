#!/usr/bin/env python3
"""differential.py - hoist's safetensors reader against the reference implementation.

For every file in the given directories (and, with --mutants N, N files made by
mutating them with a fixed seed), open it with the reference (safetensors.safe_open,
the huggingface/safetensors package) and with `hoist inspect --json`, and check:

  - hoist accepts exactly the files the reference accepts, except for the known,
    deliberate differences below, each confirmed here independently of hoist's
    message (hoist must also have rejected the file for that reason);
  - where both accept: the same tensor names, dtypes, shapes and metadata, byte
    ranges equal to the header's data_offsets, and (where torch can read the dtype)
    the reference's tensor bytes equal to the file's bytes at the range hoist reports.

Known differences (hoist is stricter, on purpose):
  duplicate     duplicate keys in any object: the reference keeps the last
  dtype_map     a dtype written as a map ({"U8": null}), a serde artifact
  fnuz          F8_E4M3FNUZ / F8_E5M2FNUZ: dtypes hoist has no name for
  big_int       an integer above INT64_MAX (e.g. a dim of a zero-size tensor)
  nul           "\\u0000" in a name or string (C strings cannot hold it)

Prints a summary ending "disagreements: N"; exits 1 if N > 0 (listing each), 2 on
usage errors.
"""
import argparse
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

import safetensors
from safetensors import safe_open

try:
    import torch
except ImportError:  # content checks then compare nothing; names/ranges still do
    torch = None

DTYPES = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2",
          "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"]
INT64_MAX = 2**63 - 1


# ---- the reference -----------------------------------------------------------------

def reference(path):
    """(True, {name: (dtype, shape, bytes or None)}, metadata) or (False, message)."""
    try:
        with safe_open(path, framework="pt" if torch else "numpy") as f:
            tensors = {}
            for name in f.keys():
                sl = f.get_slice(name)
                data = None
                if torch is not None:
                    try:
                        t = f.get_tensor(name)
                        data = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
                    except Exception:
                        data = None  # a dtype torch cannot hold (F6): no content check
                tensors[name] = (sl.get_dtype(), list(sl.get_shape()), data)
            return True, tensors, f.metadata() or {}
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # pyo3 panics derive from BaseException
        return False, "%s: %s" % (type(e).__name__, str(e)[:200]), None


def header_of(data):
    """The header's JSON text and data start, for files the reference accepted."""
    n = struct.unpack("<Q", data[:8])[0]
    return data[8:8 + n].decode("utf-8"), 8 + n


# ---- hoist -------------------------------------------------------------------------

def hoist(bin_, path):
    r = subprocess.run([bin_, "inspect", "--json", path], capture_output=True, timeout=60)
    if r.returncode != 0:
        if r.returncode >= 128 or r.returncode < 0 or not r.stderr.startswith(b"hoist: "):
            return None, "CRASH or bad exit %d: %r" % (r.returncode, r.stderr[:300])
        return False, r.stderr.decode("utf-8", "replace").strip()
    return True, json.loads(r.stdout)


# ---- known differences, judged from the file itself ------------------------------------

def known_differences(data):
    cats = set()
    try:
        text, _ = header_of(data)
    except Exception:
        return cats

    def pairs(kv):
        keys = [k for k, _ in kv]
        if len(keys) != len(set(keys)):
            cats.add("duplicate")
        for k, v in kv:
            if "\x00" in k or (isinstance(v, str) and "\x00" in v):
                cats.add("nul")
        return dict(kv)

    def big(s):
        v = int(s)
        if v > INT64_MAX:
            cats.add("big_int")
        return v

    try:
        root = json.loads(text, object_pairs_hook=pairs, parse_int=big)
    except Exception:
        return cats
    if isinstance(root, dict):
        for name, entry in root.items():
            if name == "__metadata__" or not isinstance(entry, dict):
                continue
            dt = entry.get("dtype")
            if isinstance(dt, dict):
                cats.add("dtype_map")
            if dt in ("F8_E4M3FNUZ", "F8_E5M2FNUZ"):
                cats.add("fnuz")
    return cats


# Each category, and the words hoist's message must hold for that rejection.
HOIST_REASON = {
    "duplicate": "duplicate key",
    "dtype_map": "dtype is not a string",
    "fnuz": "unknown dtype \"F8_E",
    "big_int": "too big integer",
    "nul": "not valid JSON",
}


# ---- comparison ----------------------------------------------------------------------

def compare(path, data, ref, hst):
    """Differences between two acceptances, as a list of strings."""
    _, rt, rmeta = ref
    h = hst
    out = []
    names = [t["name"] for t in h["tensors"]]
    if sorted(names) != sorted(rt):
        out.append("names differ: hoist %s, reference %s" % (sorted(names)[:5], sorted(rt)[:5]))
        return out
    if h["tensor_count"] != len(rt):
        out.append("tensor_count %d != %d" % (h["tensor_count"], len(rt)))
    if h["metadata"] != rmeta:
        out.append("metadata %r != %r" % (h["metadata"], rmeta))
    text, start = header_of(data)
    hdr = json.loads(text)
    total = 0
    last = None
    for t in h["tensors"]:
        dtype, shape, content = rt[t["name"]]
        if t["dtype"] != dtype:
            out.append("%s: dtype %s != %s" % (t["name"], t["dtype"], dtype))
        if t["shape"] != shape:
            out.append("%s: shape %s != %s" % (t["name"], t["shape"], shape))
        b, e = hdr[t["name"]]["data_offsets"]
        if (t["offset"], t["nbytes"]) != (start + b, e - b):
            out.append("%s: range [%d, +%d) != header's [%d, +%d)" %
                       (t["name"], t["offset"], t["nbytes"], start + b, e - b))
        if t["file"] != path:
            out.append("%s: file %s != %s" % (t["name"], t["file"], path))
        if content is not None and data[t["offset"]:t["offset"] + t["nbytes"]] != content:
            out.append("%s: bytes at hoist's range differ from the reference's tensor" % t["name"])
        if last is not None and t["offset"] < last:
            out.append("%s: not in file order" % t["name"])
        last = t["offset"]
        total += t["nbytes"]
    if h["total_bytes"] != total:
        out.append("total_bytes %d != %d" % (h["total_bytes"], total))
    return out


class Tally:
    def __init__(self):
        self.both_ok = self.both_bad = self.content_checked = 0
        self.known = {}
        self.bad = []

    def judge(self, bin_, path):
        with open(path, "rb") as f:
            data = f.read()
        ref = reference(path)
        hok, hres = hoist(bin_, path)
        if hok is None:
            self.bad.append("%s: hoist %s" % (path, hres))
            return ref[0]
        if ref[0] and hok:
            diffs = compare(path, data, ref, hres)
            if diffs:
                self.bad.append("%s: both accept, but: %s" % (path, "; ".join(diffs[:4])))
            else:
                self.both_ok += 1
                self.content_checked += sum(1 for v in ref[1].values() if v[2] is not None)
        elif not ref[0] and not hok:
            self.both_bad += 1
        elif ref[0] and not hok:
            cats = known_differences(data)
            why = [c for c in sorted(cats) if HOIST_REASON[c] in hres]
            if why:
                self.known[why[0]] = self.known.get(why[0], 0) + 1
            else:
                self.bad.append("%s: reference accepts, hoist rejects: %s" % (path, hres))
        else:
            self.bad.append("%s: reference rejects (%s), hoist accepts" % (path, ref[1]))
        return ref[0]


# ---- mutants -------------------------------------------------------------------------

ODD_INTS = [0, 1, 2, 3, 7, 8, -1, 2**31, 2**32, INT64_MAX, 2**63, 2**64 - 1, 2**64, 1.0, "1", None]


def mutate(rng, data):
    kind = rng.randrange(6)
    if len(data) >= 8:
        n = struct.unpack("<Q", data[:8])[0]
    else:
        n = 0
    if kind == 0 and len(data) > 8:  # flip a byte in the header
        b = bytearray(data)
        i = rng.randrange(8, min(len(data), 8 + max(n, 1)))
        b[i] = rng.randrange(256)
        return bytes(b)
    if kind == 1:  # grow or shrink the data region
        if rng.random() < 0.5 and len(data) > 8:
            return data[:len(data) - rng.randrange(1, 4)]
        return data + bytes(rng.randrange(1, 4))
    if kind == 2 and len(data) >= 8:  # a wrong header length
        delta = rng.choice([-2, -1, 1, 2, 2**32, 10**8 + 1])
        return struct.pack("<Q", max(0, n + delta) % 2**64) + data[8:]
    # JSON-aware: change one field and re-serialize
    try:
        text = data[8:8 + n].decode("utf-8")
        root = json.loads(text)
    except Exception:
        return data[:rng.randrange(len(data) + 1)]
    if not isinstance(root, dict):
        return data + b"x"
    body = data[8 + n:]
    names = [k for k in root if k != "__metadata__"]
    if rng.random() < 0.4:
        return reshape_valid(rng, root, body)
    r = rng.randrange(10)
    if names and isinstance(root[names[0]], dict):
        name = rng.choice(names)
        entry = root[name]
        if not isinstance(entry, dict):
            entry = root[name] = {}
        if r == 0:
            entry["dtype"] = rng.choice(DTYPES + ["F8_E4M3FNUZ", "f32", None, 3, {"U8": None}])
        elif r == 1 and isinstance(entry.get("shape"), list):
            s = entry["shape"]
            if s and rng.random() < 0.7:
                s[rng.randrange(len(s))] = rng.choice(ODD_INTS)
            else:
                s.append(rng.choice([0, 1, 2]))
        elif r == 2 and isinstance(entry.get("data_offsets"), list) and entry["data_offsets"]:
            o = entry["data_offsets"]
            i = rng.randrange(len(o))
            v = o[i]
            o[i] = rng.choice([v + 1, v - 1, 0, v * 2] + ODD_INTS) if isinstance(v, int) else 0
        elif r == 3 and entry:
            del entry[rng.choice(list(entry))]
        elif r == 4:
            entry[rng.choice(["x", "dtypes", "offsets"])] = rng.choice([1, [], {}, "x", None])
        elif r == 5:
            root[name + "_copy"] = dict(entry)
        elif r == 6:
            root["__metadata__"] = rng.choice([{"format": "pt"}, {"a": 1}, [], None, "x", {}])
        elif r == 7:
            del root[name]
        elif r == 8 and isinstance(entry.get("shape"), list):
            entry["shape"] = rng.choice([[], [0], list(reversed(entry["shape"])), None, 4])
        else:
            a, b = rng.choice(names), rng.choice(names)
            if isinstance(root[a], dict) and isinstance(root[b], dict):
                root[a]["data_offsets"], root[b]["data_offsets"] = \
                    root[b].get("data_offsets"), root[a].get("data_offsets")
    else:
        root["t"] = {"dtype": rng.choice(DTYPES), "shape": [rng.randrange(3)],
                     "data_offsets": [0, rng.randrange(3)]}
    out = json.dumps(root, separators=(",", ":"), ensure_ascii=rng.random() < 0.5)
    out = out.encode("utf-8", "surrogatepass") + b" " * rng.randrange(0, 8)
    return struct.pack("<Q", len(out)) + out + body


def reshape_valid(rng, root, body):
    """Changes that keep a valid file valid: key order, whitespace, padding, unknown
    keys, zero-size tensors at a boundary, metadata."""
    items = list(root.items())
    rng.shuffle(items)
    ends = [0] + [v["data_offsets"][1] for k, v in items
                  if isinstance(v, dict) and isinstance(v.get("data_offsets"), list)
                  and len(v["data_offsets"]) == 2 and isinstance(v["data_offsets"][1], int)]
    root = dict(items)
    for _ in range(rng.randrange(3)):
        at = rng.choice(ends)
        root["z%d" % rng.randrange(1000)] = {"dtype": rng.choice(DTYPES),
                                            "shape": rng.choice([[0], [3, 0], [0, 2**40]]),
                                            "data_offsets": [at, at]}
    if rng.random() < 0.3:
        root["__metadata__"] = {"format": "pt", "k%d" % rng.randrange(9): "v"}
    for k, v in root.items():
        if k != "__metadata__" and isinstance(v, dict) and rng.random() < 0.1:
            v["extra"] = rng.choice([1, "x", [1, 2], {"a": None}])
    if rng.random() < 0.5:
        out = json.dumps(root, indent=rng.choice([None, 1, 2]), ensure_ascii=rng.random() < 0.5)
    else:
        out = json.dumps(root, separators=(",", ":"))
    out = out.encode("utf-8", "surrogatepass") + rng.choice([b"", b" ", b"  \n", b"\t\r"])
    return struct.pack("<Q", len(out)) + out + body


# ---- main ----------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hoist", default=os.environ.get("HOIST_BIN", "build/hoist"))
    ap.add_argument("--mutants", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()
    if not os.access(args.hoist, os.X_OK):
        print("differential: no hoist binary at %s" % args.hoist, file=sys.stderr)
        return 2
    print("reference: safetensors %s%s" % (safetensors.__version__,
                                          ", torch %s" % torch.__version__ if torch else ""))
    tally = Tally()
    seeds, valid = [], []
    for d in args.dirs:
        files = sorted(os.path.join(d, f) for f in os.listdir(d)
                       if os.path.isfile(os.path.join(d, f)))
        print("%s: %d files" % (d, len(files)))
        for p in files:
            ok = tally.judge(args.hoist, p)
            if os.path.getsize(p) <= 65536:
                with open(p, "rb") as f:
                    (valid if ok else seeds).append(f.read())
    if args.mutants:
        rng = random.Random(args.seed)
        with tempfile.TemporaryDirectory(prefix="hoist-diff-") as tmp:
            for i in range(args.mutants):
                # mostly from files the reference accepts: mutants of those are
                # near the boundary between valid and not, where bugs live
                data = rng.choice(valid if valid and (rng.random() < 0.7 or not seeds) else seeds)
                for _ in range(rng.randrange(1, 3)):
                    data = mutate(rng, data)
                p = os.path.join(tmp, "mutant-%04d" % i)
                with open(p, "wb") as f:
                    f.write(data)
                tally.judge(args.hoist, p)
                if len(tally.bad) and tally.bad[-1].startswith(p):
                    keep = os.path.join(tempfile.gettempdir(), "hoist-diff-mutant-%d-%04d" % (args.seed, i))
                    with open(keep, "wb") as f:
                        f.write(data)
                    tally.bad[-1] += " (kept as %s)" % keep
        print("mutants: %d (seed %d)" % (args.mutants, args.seed))
    print("both accept: %d (%d tensors' bytes compared)" % (tally.both_ok, tally.content_checked))
    print("both reject: %d" % tally.both_bad)
    print("known differences: %d %s" % (sum(tally.known.values()),
                                       json.dumps(tally.known, sort_keys=True)))
    print("disagreements: %d" % len(tally.bad))
    for b in tally.bad:
        print("  " + b)
    return 1 if tally.bad else 0


if __name__ == "__main__":
    sys.exit(main())
