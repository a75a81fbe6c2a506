"""--kv-cache-dtype end to end: a worker with an int8 cache reports, through the router's
/metrics, the block count the int8 tile format gives the same --kv-cache-mb (computed here
from the format's definition, not from strata), serves requests, and a bad value stops the
worker with a message naming the flag."""
from __future__ import annotations

import math
import subprocess

import httpx

from conftest import BIN, metric_value

# builtin:tiny (worker/model/builtin_models.cpp): 4 layers, 2 KV heads of head_dim 32.
LAYERS, KV_HEADS, HEAD_DIM, BLOCK = 4, 2, 32, 16
KV_MB = 3


def bytes_per_block(dtype: str) -> int:
    """K and V of every layer: values, plus an fp16 scale per 64 channels of a row for int8."""
    value = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1}[dtype]
    scales = 2 * math.ceil(HEAD_DIM / 64) if dtype == "int8" else 0
    return 2 * LAYERS * KV_HEADS * BLOCK * (HEAD_DIM * value + scales)


def blocks_total(server) -> float:
    return metric_value(server.metrics(), "strata_kv_blocks_total", 'group="g0"')


def test_int8_cache_holds_the_blocks_its_format_allows(server_factory):
    counts = {}
    for dtype in ("bf16", "int8"):
        server = server_factory(worker_args=["--dtype", "bf16", "--kv-cache-mb", str(KV_MB),
                                             "--block-size", str(BLOCK), "--kv-cache-dtype", dtype])
        counts[dtype] = blocks_total(server)
        assert counts[dtype] == (KV_MB << 20) // bytes_per_block(dtype), dtype
        r = httpx.post(server.url("/v1/completions"), timeout=60,
                       json={"model": "builtin:tiny", "prompt": "Once upon a time",
                             "max_tokens": 24, "temperature": 0, "ignore_eos": True})
        assert r.status_code == 200, r.text
        assert r.json()["usage"]["completion_tokens"] == 24
        server.stop()
    # head_dim 32 pays one 2-byte scale per 32 int8 values: 64 / 34 of bf16's blocks.
    assert counts["int8"] / counts["bf16"] > 1.85


def test_unknown_kv_cache_dtype_names_the_flag():
    p = subprocess.run([str(BIN / "strata-worker"), "--model", "builtin:tiny", "--router",
                        "ipc:///tmp/strata-kv-dtype-never.sock", "--kv-cache-dtype", "int4"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "--kv-cache-dtype" in p.stderr + p.stdout
    assert "int8" in p.stderr + p.stdout
