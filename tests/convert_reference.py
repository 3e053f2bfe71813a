"""Reference F16 / BF16 / F32 conversions from torch (CPU), for tests/test_convert.c.

Usage: convert_reference.py OUTDIR

Writes raw little-endian files into OUTDIR:
  f32_in.bin                 the F32 inputs (bit patterns, uint32)
  f32_to_f16.bin, f32_to_bf16.bin
  f16_to_f32.bin, f16_to_bf16.bin     inputs: all 65,536 F16 patterns in order
  bf16_to_f32.bin, bf16_to_f16.bin    inputs: all 65,536 BF16 patterns in order
Each output is torch's `tensor.to(dtype)` of the inputs, viewed as integers.
"""
import sys

import numpy as np
import torch


def f32_inputs():
    parts = []
    edges = [
        0x00000000, 0x80000000,  # +-0
        0x7F800000, 0xFF800000,  # +-Inf
        0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FA00000, 0x7FFFFFFF,
        0xFFFFFFFF, 0x7FC00001, 0x7F802000, 0x7FBFFFFF, 0x7F810000,  # NaNs with payloads
        0x7F7FFFFF, 0x00800000, 0x00000001, 0x007FFFFF,  # F32 max, min normal, subnormals
        0x477FE000, 0x477FEFFF, 0x477FF000, 0x477FF001, 0x47800000,  # F16 max and past it
        0x38800000, 0x387FFFFF, 0x33800000, 0x33000000, 0x33000001, 0x32FFFFFF,
        0x33C00000, 0x34200000,  # F16 min normal / subnormal and halfway cases
        0x7F7F0000, 0x7F7F7FFF, 0x7F7F8000, 0x7F7E8000, 0x00010000, 0x00008000,
        0x00018000, 0x00008001,  # BF16 max, overflow, subnormal halfway cases
        0x3F808000, 0x3F818000, 0x3F801000, 0x3F803000, 0x3F800FFF, 0x3F801001,
    ]
    e = np.array(edges, dtype=np.uint32)
    parts += [e, e ^ np.uint32(0x80000000)]
    # Every F16 value, and the F32 values just below, at and above the midpoint to
    # its successor: every RNE tie of F32 -> F16 in the normal range, both parities.
    h = torch.arange(0, 0x7C00, dtype=torch.int32).to(torch.int16).view(torch.float16)
    hb = h.to(torch.float32).view(torch.int32).numpy().astype(np.uint32)
    for d in (0, 0x0FFF, 0x1000, 0x1001, 0x1FFF):
        parts.append(hb + np.uint32(d))
    # F16's subnormal range: multiples of half its ulp (2^-25), and one F32 ulp either side.
    k = (np.arange(0, 2 * 1024 + 8, dtype=np.float32) * np.float32(2.0**-25)).view(np.uint32)
    parts += [k, k + np.uint32(1), np.maximum(k, 1) - np.uint32(1)]
    # Every BF16 value's ties for F32 -> BF16.
    b = np.arange(0, 0x7F80, dtype=np.uint32) << np.uint32(16)
    for d in (0, 0x7FFF, 0x8000, 0x8001):
        parts.append(b + np.uint32(d))
    pos = np.concatenate(parts)
    parts = [pos, pos | np.uint32(0x80000000)]
    parts.append(np.random.default_rng(20240601).integers(0, 2**32, size=1 << 20, dtype=np.uint32))
    return np.concatenate(parts)


def bits(t, itype):
    return t.contiguous().view(itype).numpy().tobytes()


def main():
    out = sys.argv[1]
    torch.set_num_threads(1)
    f32 = f32_inputs()
    with open(f"{out}/f32_in.bin", "wb") as f:
        f.write(f32.tobytes())
    x = torch.from_numpy(f32.view(np.int32).copy()).view(torch.float32)
    outputs = {
        "f32_to_f16": bits(x.to(torch.float16), torch.int16),
        "f32_to_bf16": bits(x.to(torch.bfloat16), torch.int16),
    }
    all16 = torch.arange(0, 1 << 16, dtype=torch.int32).to(torch.int16)
    hf = all16.view(torch.float16)
    bf = all16.view(torch.bfloat16)
    outputs["f16_to_f32"] = bits(hf.to(torch.float32), torch.int32)
    outputs["f16_to_bf16"] = bits(hf.to(torch.bfloat16), torch.int16)
    outputs["bf16_to_f32"] = bits(bf.to(torch.float32), torch.int32)
    outputs["bf16_to_f16"] = bits(bf.to(torch.float16), torch.int16)
    for name, data in outputs.items():
        with open(f"{out}/{name}.bin", "wb") as f:
            f.write(data)
    print(f"torch {torch.__version__}: {len(f32)} F32 inputs")


if __name__ == "__main__":
    main()
