#!/usr/bin/env python3
"""Writes safetensors fixtures with the reference `safetensors` package, plus expected.json.

usage: make_safetensors_fixtures.py TEST_DATA_DIR
Output under TEST_DATA_DIR/safetensors/:
  single.safetensors          f32, f16, i32, u8, a scalar and an empty tensor (numpy save_file)
  bf16.safetensors            bf16 tensors written through safetensors.serialize_file
  dir_single/model.safetensors
  sharded/model-0000{1,2}-of-00002.safetensors + model.safetensors.index.json
  expected.json               {file: {tensor: {dtype, shape, values (as float64)}}}
"""
import json
import os
import sys

import numpy as np
import safetensors
from safetensors.numpy import save_file


def describe(arr, dtype_name):
    return {
        "dtype": dtype_name,
        "shape": list(arr.shape),
        "values": [float(v) for v in arr.astype(np.float64).ravel()],
    }


def bf16_tensor(values):
    """float32 values → (bf16 bytes by truncation, the float32 values they decode to)."""
    f32 = np.asarray(values, dtype=np.float32)
    bits = (f32.view(np.uint32) >> 16).astype(np.uint16)
    decoded = (bits.astype(np.uint32) << 16).view(np.float32)
    return bits.astype("<u2").tobytes(), decoded


def main():
    out = os.path.join(sys.argv[1], "safetensors")
    os.makedirs(os.path.join(out, "dir_single"), exist_ok=True)
    os.makedirs(os.path.join(out, "sharded"), exist_ok=True)
    rng = np.random.default_rng(20240501)
    expected = {}

    single = {
        "embed.weight": rng.standard_normal((5, 7)).astype(np.float32),
        "norm.weight": rng.standard_normal((7,)).astype(np.float16),
        "positions": np.arange(-3, 9, dtype=np.int32).reshape(3, 4),
        "bytes": np.arange(250, 256, dtype=np.uint8),
        "scale": np.array(3.25, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }
    names = {np.float32: "F32", np.float16: "F16", np.int32: "I32", np.uint8: "U8"}
    save_file(single, os.path.join(out, "single.safetensors"), metadata={"format": "np"})
    expected["single.safetensors"] = {
        k: describe(v, names[v.dtype.type]) for k, v in single.items()}

    bf16 = {}
    bf16_expected = {}
    for name, shape in [("layers.0.attn.q.weight", (4, 3)), ("layers.0.mlp.up.weight", (2, 5))]:
        values = rng.standard_normal(shape).astype(np.float32)
        data, decoded = bf16_tensor(values)
        bf16[name] = {"dtype": "bfloat16", "shape": list(shape), "data": data}
        bf16_expected[name] = describe(decoded.reshape(shape), "BF16")
    safetensors.serialize_file(bf16, os.path.join(out, "bf16.safetensors"))
    expected["bf16.safetensors"] = bf16_expected

    dir_single = {"w": np.linspace(-1.0, 1.0, 9, dtype=np.float32).reshape(3, 3)}
    save_file(dir_single, os.path.join(out, "dir_single", "model.safetensors"))
    expected["dir_single"] = {k: describe(v, "F32") for k, v in dir_single.items()}

    shard_tensors = [
        {"model.embed_tokens.weight": rng.standard_normal((6, 4)).astype(np.float32),
         "model.layers.0.input_layernorm.weight": rng.standard_normal((4,)).astype(np.float16)},
        {"model.layers.1.input_layernorm.weight": rng.standard_normal((4,)).astype(np.float32),
         "lm_head.weight": rng.standard_normal((6, 4)).astype(np.float16)},
    ]
    weight_map = {}
    sharded_expected = {}
    total_size = 0
    for i, tensors in enumerate(shard_tensors):
        shard = f"model-{i + 1:05d}-of-{len(shard_tensors):05d}.safetensors"
        save_file(tensors, os.path.join(out, "sharded", shard), metadata={"format": "pt"})
        for name, arr in tensors.items():
            weight_map[name] = shard
            total_size += arr.nbytes
            sharded_expected[name] = describe(arr, names[arr.dtype.type])
    with open(os.path.join(out, "sharded", "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total_size}, "weight_map": weight_map}, f, indent=2)
    expected["sharded"] = sharded_expected

    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


if __name__ == "__main__":
    main()
