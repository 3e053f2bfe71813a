#!/usr/bin/env python3
"""The Python binding against its peers, warm, in one run: medians and peak RSS.

    .venv/bin/python bench/python_bench.py [--runs 5] [--dir /tmp/hoist-pybench]

Checkpoints (written once under --dir, then reused):
  qwen2vl-3g   a consistent Qwen2-VL of about 3 GB (bf16: hidden 1536, 20 layers, a
               16-block vision tower), written by `hoist synth --from` a config made
               here, so that transformers can build the model its tensors fit;
  synth-7b-018 `hoist synth --from tests/data/qwen2-vl-7b/config.json --scale 0.18`:
               the 7B layout with every first dimension shrunk (2.98 GB), for the
               tensor loaders (no model fits it);
  many-100k    100,000 tensors of 16 bytes (one shard), for the binding's cost per
               tensor.

Each measurement runs in a fresh child process (imports done before the clock starts),
so its peak RSS (VmHWM) is its own; the page cache is warmed by reading every shard
before the runs. What is timed:
  hoist.load(cpu)           hoist.load(path, device_map="cpu"): zero-copy views of the
                            mapped shards; "+touch" also reads a byte of every page
  hoist.load(cpu, copy)     host_memory="pageable": every byte copied into fresh memory
  safetensors load_file     safetensors.torch.load_file(path) per shard (+touch likewise)
  transformers              Qwen2VLForConditionalGeneration.from_pretrained(path,
                            torch_dtype=bfloat16, device_map="cpu")
  hoist.transformers        hoist.transformers.from_pretrained(cls, path,
                            torch_dtype=bfloat16, device_map="cpu")
Figures are medians of --runs; ratios against hoist.load(cpu). Print a table only: no
assertion on time anywhere (tests never time).
"""

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOIST_BIN = os.path.join(ROOT, "build", "hoist")

CONFIG_3G = {
    "architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl",
    "hidden_act": "silu", "hidden_size": 1536, "intermediate_size": 8960,
    "num_hidden_layers": 20, "num_attention_heads": 12, "num_key_value_heads": 2,
    "max_position_embeddings": 32768, "max_window_layers": 20, "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0, "sliding_window": 32768, "use_sliding_window": False,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True,
    "vocab_size": 151936, "bos_token_id": 151643, "eos_token_id": 151645,
    "vision_start_token_id": 151652, "vision_end_token_id": 151653,
    "vision_token_id": 151654, "image_token_id": 151655, "video_token_id": 151656,
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    "vision_config": {"depth": 16, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16,
                      "in_chans": 3, "hidden_size": 1536, "patch_size": 14,
                      "spatial_merge_size": 2, "temporal_patch_size": 2},
}


def shards(path):
    return sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".safetensors"))


def make_checkpoints(base):
    os.makedirs(base, exist_ok=True)
    out = {}
    q = os.path.join(base, "qwen2vl-3g")
    if not os.path.exists(os.path.join(q, "model.safetensors.index.json")):
        os.makedirs(q, exist_ok=True)
        cfg = os.path.join(base, "qwen2vl-3g.config.json")
        with open(cfg, "w") as f:
            json.dump(CONFIG_3G, f, indent=1)
        subprocess.run([HOIST_BIN, "synth", q, "--from", cfg], check=True)
        with open(os.path.join(q, "config.json"), "w") as f:
            json.dump(CONFIG_3G, f, indent=1)  # the model's own config, as transformers reads it
    out["qwen2vl-3g"] = q
    s = os.path.join(base, "synth-7b-018")
    if not os.path.exists(os.path.join(s, "model.safetensors.index.json")):
        subprocess.run([HOIST_BIN, "synth", s, "--from",
                        os.path.join(ROOT, "tests/data/qwen2-vl-7b/config.json"),
                        "--scale", "0.18"], check=True)
    out["synth-7b-018"] = s
    m = os.path.join(base, "many-100k.safetensors")
    if not os.path.exists(m):
        header, offset = {}, 0
        for i in range(100_000):
            header[f"model.layers.{i // 100}.w{i % 100}"] = {
                "dtype": "F32", "shape": [4], "data_offsets": [offset, offset + 16]}
            offset += 16
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        with open(m, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text)
            f.write(bytes(offset))
    out["many-100k"] = m
    return out


def warm(paths):
    for p in paths:
        with open(p, "rb") as f:
            while f.read(64 << 20):
                pass


# One measurement, in a child: prints {"seconds", "hwm", "rss0"} as JSON.
CHILD = r'''
import json, os, sys, time
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
kind, path = sys.argv[1], sys.argv[2]
import torch
if kind.startswith("hoist"):
    sys.path.insert(0, sys.argv[3])
    import hoist
if kind.startswith("safetensors"):
    from safetensors.torch import load_file
if kind.endswith("transformers"):
    import transformers
    transformers.logging.set_verbosity_error()
    from transformers import Qwen2VLForConditionalGeneration as M
    if kind.startswith("hoist"):
        import hoist.transformers as ht
def touch(tensors):
    total = 0
    for t in tensors:
        b = t.reshape(-1).view(torch.uint8) if t.numel() else t
        total += int(b[::4096].sum()) if b.numel() else 0
    return total
rss0 = status("VmRSS:")
t0 = time.perf_counter()
extra = {}
if kind in ("hoist", "hoist+touch"):
    got = hoist.load(path, device_map="cpu")
    if kind.endswith("touch"):
        touch(got.values())
    extra["c_seconds"] = got.report["total_seconds"]
elif kind == "hoist-copy":
    got = hoist.load(path, device_map="cpu", host_memory="pageable")
    extra["c_seconds"] = got.report["total_seconds"]
elif kind in ("safetensors", "safetensors+touch"):
    got = {}
    for f in sorted(os.listdir(path)):
        if f.endswith(".safetensors"):
            got.update(load_file(os.path.join(path, f)))
    if kind.endswith("touch"):
        touch(got.values())
elif kind == "transformers":
    got = M.from_pretrained(path, torch_dtype=torch.bfloat16, device_map="cpu")
elif kind == "hoist.transformers":
    got = ht.from_pretrained(M, path, torch_dtype=torch.bfloat16, device_map="cpu")
elif kind.startswith("hoist-many-"):
    fw = kind[len("hoist-many-"):]
    got = hoist.load(path, device_map="cpu", framework=fw)
    extra["c_seconds"] = got.report["total_seconds"]
    extra["tensors"] = len(got)
seconds = time.perf_counter() - t0
if kind.startswith("hoist-many-") and fw != "dlpack":
    # the framework's own import of one DLPack tensor, for the same tensors
    model = hoist.open(path).plan(device_map="cpu")._p.load()
    n = model.count()
    if fw == "torch":
        caps = model.capsules(list(range(n)), [False] * n)
        f = torch._C._from_dlpack
        t1 = time.perf_counter()
        made = [f(c) for c in caps]
    else:
        import numpy
        objs = [model.tensor(i) for i in range(n)]
        t1 = time.perf_counter()
        made = [numpy.from_dlpack(o) for o in objs]
    extra["framework_alone"] = (time.perf_counter() - t1) / n
print(json.dumps(dict(seconds=seconds, hwm=status("VmHWM:"), rss0=rss0, **extra)))
'''


def measure(kind, path, runs):
    rows = []
    for _ in range(runs):
        r = subprocess.run([sys.executable, "-c", CHILD, kind, path,
                            os.path.join(ROOT, "python")], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{kind}: {r.stderr[-2000:]}")
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
    return rows


def med(rows, key):
    return statistics.median(r[key] for r in rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", default="/tmp/hoist-pybench")
    args = ap.parse_args()
    ck = make_checkpoints(args.dir)
    print(f"python {sys.version.split()[0]}; runs {args.runs}; medians; warm page cache")
    for name in ("qwen2vl-3g", "synth-7b-018"):
        path = ck[name]
        size = sum(os.path.getsize(f) for f in shards(path))
        kinds = ["hoist", "hoist+touch", "hoist-copy", "safetensors", "safetensors+touch"]
        if name == "qwen2vl-3g":
            kinds += ["transformers", "hoist.transformers"]
        warm(shards(path))
        results = {k: measure(k, path, args.runs) for k in kinds}
        base = med(results["hoist"], "seconds")
        print(f"\n{name}: {size / 1e9:.2f} GB in {len(shards(path))} shards")
        print("| what | median s | x hoist.load(cpu) | GB/s | peak RSS GB | RSS growth GB |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for k, rows in results.items():
            s = med(rows, "seconds")
            hwm = med(rows, "hwm")
            grow = statistics.median(r["hwm"] - r["rss0"] for r in rows)
            print(f"| {k} | {s:.3f} | {s / base:.2f} | {size / s / 1e9:.2f} | "
                  f"{hwm / 1e9:.2f} | {grow / 1e9:.2f} |")
    warm([ck["many-100k"]])
    print("\nmany-100k: 100,000 tensors of 16 bytes, one shard")
    print("| framework | hoist.load s | of which C (open to finalize) s | per tensor beyond C |"
          " the framework's own from_dlpack per tensor | the binding's own per tensor |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for fw in ("dlpack", "numpy", "torch"):
        rows = measure(f"hoist-many-{fw}", ck["many-100k"], args.runs)
        s, c = med(rows, "seconds"), med(rows, "c_seconds")
        per = statistics.median((r["seconds"] - r["c_seconds"]) / r["tensors"] for r in rows)
        alone = med(rows, "framework_alone") if "framework_alone" in rows[0] else 0.0
        print(f"| {fw} | {s:.3f} | {c:.3f} | {per * 1e6:.2f} us | "
              f"{alone * 1e6:.2f} us | {(per - alone) * 1e6:.2f} us |")


if __name__ == "__main__":
    main()
