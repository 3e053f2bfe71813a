"""The Python path of the GPU session (bench/gpu/run.sh): one step per process, each
ending with one JSON line on stdout (timed.py keeps the last), whose "verdict" run.sh
writes into status.txt.

  finite CKPT          every floating value of a `hoist synth` checkpoint given a fixed
                       exponent, in place, so that a forward pass gives finite logits
  load CKPT DEVICE N   hoist.load(CKPT, device_map=DEVICE) N times (median), peak RSS
                       over the loads, then every tensor compared byte for byte with
                       safetensors' CPU view of the file, on DEVICE
  model CKPT DEVICE    the model of CKPT/config.json filled by
                       hoist.transformers.from_pretrained and by transformers'
                       from_pretrained(device_map=DEVICE), each timed with its peak RSS;
                       one forward pass of each on the same input; logits, parameters
                       and buffers compared bit for bit

DEVICE is "cuda:0" / "cuda" on the GPU machine and "cpu" in the dry run. Python 3.9+,
torch, safetensors and numpy; the model step also transformers and accelerate; the
hoist package with its extension on PYTHONPATH (run.sh sets it, and
HOIST_GPU_EXTENSION, the extension it must be).

usage: python3 python_step.py {finite CKPT | load CKPT DEVICE RUNS | model CKPT DEVICE}
"""
import json
import os
import shutil
import statistics
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor


# --- shared --------------------------------------------------------------------------

def import_hoist():
    """The hoist package on PYTHONPATH (run.sh: its own build of the extension, in
    $BUILD_DIR/python); where HOIST_GPU_EXTENSION names that extension, an error
    unless it is the one imported (a source tree's python/hoist, built in place or
    not, or an installed hoist, would stand in for it unseen)."""
    import hoist

    want = os.environ.get("HOIST_GPU_EXTENSION")
    got = hoist._hoist.__file__
    if want and os.path.realpath(got) != os.path.realpath(want):
        raise ImportError(f"imported the hoist extension {got}, not {want} (PYTHONPATH)")
    return hoist


def shard_files(ckpt):
    """The checkpoint's shard files, sorted, as hoist reads its index."""
    from hoist.source import shard_files as tensor_files

    return sorted(set(tensor_files(ckpt)[1].values()))


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def rss_now():
    return _status_kib("VmRSS")


def reset_peak():
    """Sets the process's peak RSS (VmHWM) back to its current RSS (Linux 4.0 and
    later), so that each load's peak is its own; False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss():
    return _status_kib("VmHWM")


def sync(device):
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def ready(device):
    """The device's context and its matrix library set up outside every timing."""
    import torch

    a = torch.ones(64, 64, device=device)
    (a @ a).sum().item()
    sync(device)


def raw(t):
    """A tensor's bytes as a flat uint8 tensor on its device: compares bit for bit
    (NaN's payload and -0.0 included), whatever the dtype."""
    import torch

    return t.detach().contiguous().reshape(-1).view(torch.uint8)


def same_bytes(a, b):
    import torch

    if a is None or b is None or a.dtype != b.dtype or tuple(a.shape) != tuple(b.shape):
        return False
    return torch.equal(raw(a), raw(b.to(a.device)))


def emit(result):
    print(json.dumps(result), flush=True)


# --- finite: the synthetic checkpoint made fit for a forward pass ---------------------

# `hoist synth` fills tensors with random bytes: as bfloat16 one value in 256 is Inf or
# NaN and the rest spread over 10^-38..10^38, so a forward pass gives NaN logits, which
# compare unequal even to themselves. Each value keeps its sign and mantissa bits and
# gets a fixed exponent: magnitudes in [2^-7, 2^-6) (about 1 / sqrt of the 7B's
# fan-ins, 1176 to 18944) for weights, [1, 2) for norm weights (1-D, named *norm* or
# ln_*), so activations stay near 1 through the layers and every layer's weights reach
# the logits. dtype: (numpy dtype, sign and mantissa bits, exponent shift, bias).
_FLOAT_BITS = {"BF16": ("<u2", 0x807F, 7, 127), "F16": ("<u2", 0x83FF, 10, 15),
               "F32": ("<u4", 0x807FFFFF, 23, 127)}
_CHUNK = 64 << 20
MARKER = ".hoist-finite"  # in the checkpoint directory, once every shard is done


def _exponent(name, shape):
    module = name.split(".")[-2] if "." in name else ""
    return 0 if len(shape) == 1 and ("norm" in module or module.startswith("ln_")) else -7


def _read_header(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return 8 + n, json.loads(f.read(n))


def _full(op, fd, view, offset, what):
    done = 0
    while done < len(view):
        n = op(fd, view[done:], offset + done)
        if n <= 0:
            raise OSError(f"{what}: {'read' if op is _pread else 'write'} stopped at "
                          f"offset {offset + done}")
        done += n


def _pread(fd, view, offset):
    return os.preadv(fd, [view], offset)


def _pwrite(fd, view, offset):
    return os.pwrite(fd, view, offset)


def finite_step(ckpt):
    import numpy

    marker = os.path.join(ckpt, MARKER)
    if os.path.exists(marker):
        emit({"step": "finite", "skipped": True,
              "verdict": f"finite: already done ({marker})"})
        return 0
    t0 = time.perf_counter()
    jobs, fds, tensors, left = [], [], 0, []
    for path in shard_files(ckpt):
        start, header = _read_header(path)
        fd = os.open(path, os.O_RDWR)
        fds.append(fd)
        for name, info in header.items():
            if name == "__metadata__":
                continue
            bits = _FLOAT_BITS.get(info["dtype"])
            if bits is None:
                left.append(name)
                continue
            tensors += 1
            begin, end = info["data_offsets"]
            for off in range(begin, end, _CHUNK):
                jobs.append((fd, path, start + off, min(_CHUNK, end - off), bits,
                             _exponent(name, info["shape"])))
    local = threading.local()

    def run(job):
        fd, path, offset, nbytes, (dtype, keep, shift, bias), exponent = job
        if getattr(local, "buf", None) is None:
            local.buf = numpy.empty(_CHUNK, dtype=numpy.uint8)
        view = memoryview(local.buf[:nbytes])
        _full(_pread, fd, view, offset, path)
        words = local.buf[:nbytes].view(dtype)
        numpy.bitwise_and(words, numpy.array(keep, dtype=words.dtype), out=words)
        numpy.bitwise_or(words, numpy.array((bias + exponent) << shift, dtype=words.dtype),
                         out=words)
        _full(_pwrite, fd, view, offset, path)
        return nbytes

    try:
        with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
            nbytes = sum(pool.map(run, jobs))
    finally:
        for fd in fds:
            os.close(fd)
    with open(marker, "w") as f:
        json.dump({"exponents": {"weights": -7, "norm weights": 0}, "tensors": tensors}, f)
    seconds = time.perf_counter() - t0
    emit({"step": "finite", "skipped": False, "tensors": tensors, "bytes": nbytes,
          "left_as_stored": left, "seconds": round(seconds, 3),
          "GBps": round(nbytes / seconds / 1e9, 2),
          "verdict": f"finite: {tensors} tensors, {nbytes / 1e9:.2f} GB rewritten in place "
                     f"in {seconds:.1f} s ({len(left)} not floating, left as stored)"})
    return 0


# --- load: hoist.load from Python ----------------------------------------------------

def load_step(ckpt, device, runs):
    import torch
    from safetensors import safe_open

    hoist = import_hoist()
    out = {"step": "load", "device": device, "torch": torch.__version__,
           "hoist": hoist.__version__, "extension": hoist._hoist.__file__}
    ready(device)
    out["rss_before_bytes"] = rss_now()
    out["peak_reset"] = reset_peak()
    walls, streams, tensors = [], [], None
    for _ in range(runs):
        tensors = None  # the last run's memory goes before the next load
        t0 = time.perf_counter()
        tensors = hoist.load(ckpt, device_map=device)
        sync(device)
        walls.append(time.perf_counter() - t0)
        streams.append(tensors.report["seconds"]["stream"])
    out["peak_rss_bytes"] = peak_rss()
    report = tensors.report
    nbytes = report["checkpoint_bytes"]
    out.update(runs=runs, walls=[round(w, 4) for w in walls],
               seconds=round(statistics.median(walls), 4),
               stream_seconds=round(statistics.median(streams), 4), bytes=nbytes,
               GBps=round(nbytes / statistics.median(walls) / 1e9, 2), bound=report["bound"],
               memory=[d["memory"] for d in report["devices"]],
               tensor_device=str(next(iter(tensors.values())).device))

    # every tensor against the file, read by safetensors on the CPU, compared on DEVICE
    t0 = time.perf_counter()
    seen, differ = set(), []
    for path in shard_files(ckpt):
        with safe_open(path, framework="pt", device="cpu") as f:
            for name in f.keys():
                seen.add(name)
                if not same_bytes(tensors.get(name), f.get_tensor(name)):
                    differ.append(name)
    extra = [n for n in tensors if n not in seen]
    out.update(checked=len(seen), differ=differ[:8], differ_count=len(differ),
               not_in_file=extra[:8], check_seconds=round(time.perf_counter() - t0, 2))
    ok = not differ and not extra
    out["bytes_equal"] = ok
    out["verdict"] = (
        f"hoist.load from Python to {device}: median {out['seconds']:.3f} s of {runs} "
        f"({out['GBps']:.2f} GB/s, stream {out['stream_seconds']:.3f} s), peak RSS "
        f"{out['peak_rss_bytes'] / 1e9:.2f} GB; "
        + (f"all {len(seen)} tensors equal to safetensors' CPU view of the file" if ok else
           f"BYTES DIFFER: {len(differ)} of {len(seen)} tensors ({', '.join(differ[:4])}), "
           f"{len(extra)} not in the file"))
    emit(out)
    return 0 if ok else 1


# --- model: hoist.transformers against transformers --------------------------------------

_TEXT_FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                "num_attention_heads", "num_key_value_heads")
_VISION_FIELDS = ("depth", "embed_dim", "num_heads", "hidden_size")


def installed_config(cls, flat):
    """The checkpoint's config.json as the installed transformers has it. hoist synth
    copies tests/data/qwen2-vl-7b/config.json (or the dry run's
    bench/gpu/qwen2-vl-small.json) beside the shards: the flat form of 4.x, the text
    settings at the top. The installed config class builds itself from it as
    from_pretrained would (4.x as it is; 5 reads the top-level settings into
    text_config), and its save_pretrained
    writes the installed version's own form, which both loaders then read. Raises
    where the result does not state the checkpoint's sizes."""
    config = cls.config_class.from_dict(flat)
    text = getattr(config, "text_config", None) or config
    wrong = [f"{k} {getattr(text, k, None)} (config.json: {flat[k]})"
             for k in _TEXT_FIELDS if getattr(text, k, None) != flat[k]]
    wrong += [f"vision {k} {getattr(config.vision_config, k, None)} (config.json: "
              f"{flat['vision_config'][k]})" for k in _VISION_FIELDS
              if getattr(config.vision_config, k, None) != flat["vision_config"][k]]
    if wrong:
        raise ValueError(f"{cls.config_class.__name__} read config.json otherwise: "
                         + "; ".join(wrong))
    return config


def model_dir_for(ckpt, config):
    """CKPT-model/: the installed form of the config beside links to CKPT's shards and
    index (the checkpoint itself is left as it is)."""
    out = ckpt.rstrip("/") + "-model"
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    config.save_pretrained(out)
    for path in shard_files(ckpt) + [os.path.join(ckpt, "model.safetensors.index.json")]:
        if os.path.exists(path):
            os.symlink(os.path.abspath(path), os.path.join(out, os.path.basename(path)))
    return out


def model_inputs(config, device):
    """One image of (2 merge) x (2 merge) patches, 4 image tokens once merged, between
    5 and 6 text tokens; the ids come from the config."""
    import torch

    text = getattr(config, "text_config", None) or config
    vision = config.vision_config
    g = torch.Generator().manual_seed(0)
    below = min(config.vision_start_token_id, config.image_token_id, text.vocab_size)
    side = 2 * vision.spatial_merge_size
    patch = (getattr(vision, "in_channels", 3) * vision.temporal_patch_size
             * vision.patch_size * vision.patch_size)
    ids = torch.cat([torch.randint(0, below, (5,), generator=g),
                     torch.tensor([config.vision_start_token_id]),
                     torch.full((4,), config.image_token_id),
                     torch.tensor([config.vision_end_token_id]),
                     torch.randint(0, below, (6,), generator=g)]).unsqueeze(0)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
              "pixel_values": torch.randn(side * side, patch, generator=g),
              "image_grid_thw": torch.tensor([[1, side, side]])}
    return {k: v.to(device) for k, v in inputs.items()}


def forward(model, inputs, device):
    """The logits of one forward pass, with the 3-D (mrope) position ids passed in:
    4.46's forward leaves them to generate(); later versions compute the same."""
    import torch

    rope_index = getattr(model, "get_rope_index", None) or model.model.get_rope_index
    position_ids, _ = rope_index(input_ids=inputs["input_ids"],
                                 image_grid_thw=inputs["image_grid_thw"], video_grid_thw=None,
                                 attention_mask=inputs["attention_mask"])
    with torch.no_grad():
        logits = model(**inputs, position_ids=position_ids, use_cache=False).logits
    sync(device)
    return logits


def attempt(errors, what, fn):
    """fn(), or None with its error kept under errors[what] (the traceback to the log),
    so that one failing part leaves the others' results."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - reported, not handled
        traceback.print_exc()
        errors[what] = "".join(traceback.format_exception_only(type(e), e)).strip()[-400:]
        return None


def timed_load(out, key, device, fn):
    reset_peak()
    t0 = time.perf_counter()
    model = fn()
    sync(device)
    seconds = time.perf_counter() - t0
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    out[key] = {"seconds": round(seconds, 3), "bytes": nbytes,
                "GBps": round(nbytes / seconds / 1e9, 2), "peak_rss_bytes": peak_rss()}
    return model


def compare(named_a, named_b):
    """(equal count, names that differ or are on one side only) of two {name: tensor}."""
    differ = sorted(n for n in set(named_a) | set(named_b)
                    if not same_bytes(named_a.get(n), named_b.get(n)))
    return len(set(named_a) | set(named_b)) - len(differ), differ


def model_step(ckpt, device):
    import torch
    import transformers
    from packaging.version import Version

    import_hoist()
    import hoist.transformers as ht

    errors, loads = {}, {}
    out = {"step": "model", "device": device, "torch": torch.__version__,
           "transformers": transformers.__version__, "loads": loads, "errors": errors}
    with open(os.path.join(ckpt, "config.json")) as f:
        flat = json.load(f)
    flat.pop("hoist_synth", None)  # synth's note of its seed and scale, not a setting
    cls = getattr(transformers, flat["architectures"][0])
    config = installed_config(cls, flat)
    path = model_dir_for(ckpt, config)
    with open(os.path.join(path, "config.json")) as f:
        out["config_form"] = "nested (text_config)" if "text_config" in json.load(f) else "flat"
    ready(device)
    inputs = model_inputs(config, device)
    # Both loaders get the same dtype and attention code (eager: the same kernels on
    # every version and device). 4.56 renamed from_pretrained's torch_dtype to dtype.
    dtype_key = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
    common = {"device_map": device, "attn_implementation": "eager"}
    out["rss_before_bytes"] = rss_now()
    out["peak_reset"] = reset_peak()

    # Both models stay on the device to the end (2 x 16.6 GB of the H200's 141 GB):
    # then every parameter and buffer can be compared, which says where to look when
    # the logits differ, and neither load is timed with the other's memory being freed.
    mine = attempt(errors, "hoist.transformers.from_pretrained", lambda: timed_load(
        loads, "hoist", device, lambda: ht.from_pretrained(cls, path, torch_dtype=torch.bfloat16,
                                                         **common)))
    if mine is not None:
        loads["hoist"].update(copied=mine.hoist_load.copied,
                            missing=mine.hoist_load.missing_keys[:8],
                            unexpected=mine.hoist_load.unexpected_keys[:8])
    mine_logits = mine and attempt(errors, "forward (hoist)",
                                   lambda: forward(mine, inputs, device))
    theirs = attempt(errors, "transformers from_pretrained", lambda: timed_load(
        loads, "transformers", device, lambda: cls.from_pretrained(
            path, **{dtype_key: torch.bfloat16}, **common)))
    their_logits = theirs and attempt(errors, "forward (transformers)",
                                      lambda: forward(theirs, inputs, device))

    if mine is not None and theirs is not None:
        equal, differ = compare(mine.state_dict(), theirs.state_dict())
        out["state_dict"] = {"equal": equal, "differ": differ[:8], "differ_count": len(differ)}
        equal, differ = compare(dict(mine.named_buffers()), dict(theirs.named_buffers()))
        out["buffers"] = {"equal": equal, "differ": differ[:8], "differ_count": len(differ)}
    if mine_logits is not None and their_logits is not None:
        a, b = mine_logits, their_logits
        exact = torch.equal(a, b)
        out["logits"] = {
            "shape": list(a.shape), "dtype": str(a.dtype).replace("torch.", ""),
            "finite": bool(torch.isfinite(a).all() and torch.isfinite(b).all()),
            "torch_equal": exact, "bits_equal": same_bytes(a, b),
            "max_abs_diff": float((a.float() - b.float()).abs().max()),
            "max_abs": float(b.float().abs().max())}
        # hoist's model again with transformers' buffers copied in: equal logits then
        # put a difference on the buffers (RoPE inv_freq, computed where each loader
        # builds the model), not on the loaded weights; unchanged buffers make it a
        # check that the forward pass repeats bit for bit.
        for name, buf in theirs.named_buffers():
            mine.get_buffer(name).copy_(buf)
        again = attempt(errors, "forward (hoist, transformers' buffers)",
                        lambda: forward(mine, inputs, device))
        out["logits"]["equal_with_their_buffers"] = again is not None and torch.equal(again, b)
    out["verdict"] = model_verdict(out)
    emit(out)
    return 0 if "logits" in out and out["logits"]["torch_equal"] else 1


def model_verdict(out):
    loads = out["loads"]
    timings = "; ".join(f"{who} {loads[who]['seconds']:.2f} s, peak RSS "
                        f"{loads[who]['peak_rss_bytes'] / 1e9:.2f} GB"
                        for who in ("hoist", "transformers") if who in loads)
    head = f"model on {out['device']} (transformers {out['transformers']}, config " \
           f"{out['config_form']}): {timings}"
    if "logits" not in out:
        return head + "; logits NOT COMPARED: " + "; ".join(
            f"{k}: {v}" for k, v in out["errors"].items())
    lg, sd, bf = out["logits"], out["state_dict"], out["buffers"]
    said = (f"logits {'bit-exact equal (torch.equal)' if lg['torch_equal'] else 'DIFFER'} "
            f"{'x'.join(map(str, lg['shape']))} {lg['dtype']}"
            f"{'' if lg['finite'] else ' (NOT ALL FINITE)'}"
            f"{'' if lg['torch_equal'] else ', max |diff| %g of max |logit| %g' % (lg['max_abs_diff'], lg['max_abs'])}; "
            f"state_dict {sd['equal']} equal, {sd['differ_count']} differ"
            f"{' (' + ', '.join(sd['differ'][:3]) + ')' if sd['differ'] else ''}; "
            f"buffers {bf['equal']} equal, {bf['differ_count']} differ"
            f"{' (' + ', '.join(bf['differ'][:3]) + ')' if bf['differ'] else ''}; "
            f"with transformers' buffers hoist's logits "
            f"{'equal' if lg['equal_with_their_buffers'] else 'differ'}; "
            f"copied by hoist: {len(loads['hoist']['copied'])}")
    errors = "; ".join(f"{k}: {v}" for k, v in out["errors"].items())
    return f"{head}; {said}" + (f"; errors: {errors}" if errors else "")


def main(argv):
    if len(argv) == 2 and argv[0] == "finite":
        return finite_step(argv[1])
    if len(argv) == 4 and argv[0] == "load":
        return load_step(argv[1], argv[2], int(argv[3]))
    if len(argv) == 3 and argv[0] == "model":
        return model_step(argv[1], argv[2])
    sys.stderr.write(__doc__.rsplit("usage: ", 1)[1])
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
