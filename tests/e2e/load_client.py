"""Streaming load against a strata router, and the same workload on the in-process engine
(bench_engine --mode decode), for test_load.py and tools/bench_http_overhead.py.

The workload: `num_requests` completions of `prompt_tokens` random token ids each, every one
generating exactly `output_tokens` tokens (ignore_eos), at most `concurrency` streams open
at once."""
from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class LoadResult:
    seconds: float = 0.0
    completed: int = 0
    failures: list[str] = field(default_factory=list)
    output_tokens: int = 0
    ttft_s: list[float] = field(default_factory=list)

    @property
    def output_tokens_per_s(self) -> float:
        return self.output_tokens / self.seconds if self.seconds else 0.0


async def _one_stream(client: httpx.AsyncClient, url: str, body: dict, result: LoadResult):
    start = time.monotonic()
    tokens = 0
    done = False
    first = None
    try:
        async with client.stream("POST", url, json=body) as r:
            if r.status_code != 200:
                result.failures.append(f"status {r.status_code}: {(await r.aread())[:200]!r}")
                return
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[len("data: "):]
                if data == "[DONE]":
                    done = True
                    break
                chunk = json.loads(data)
                if "error" in chunk:
                    result.failures.append(f"error event: {data[:200]}")
                    return
                for choice in chunk["choices"]:
                    n = len(choice.get("token_ids") or [])
                    if n and first is None:
                        first = time.monotonic() - start
                    tokens += n
    except httpx.HTTPError as e:
        result.failures.append(f"{type(e).__name__}: {e}")
        return
    if not done:
        result.failures.append("stream ended without data: [DONE]")
    elif tokens != body["max_tokens"]:
        result.failures.append(f"{tokens} tokens streamed, {body['max_tokens']} asked")
    else:
        result.completed += 1
        result.output_tokens += tokens
        if first is not None:
            result.ttft_s.append(first)


async def _run_load(base_url: str, num_requests: int, concurrency: int, prompt_tokens: int,
                    output_tokens: int, vocab_size: int, seed: int) -> LoadResult:
    rng = random.Random(seed)
    result = LoadResult()
    limits = httpx.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency + 8)
    timeout = httpx.Timeout(120.0, connect=30.0)
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        async def bounded(i: int):
            body = {"prompt": [rng.randrange(3, vocab_size) for _ in range(prompt_tokens)],
                    "max_tokens": output_tokens, "ignore_eos": True, "temperature": 0,
                    "stream": True, "return_token_ids": True}
            async with semaphore:
                await _one_stream(client, base_url + "/v1/completions", body, result)

        start = time.monotonic()
        await asyncio.gather(*(bounded(i) for i in range(num_requests)))
        result.seconds = time.monotonic() - start
    return result


def run_streaming_load(base_url: str, *, num_requests: int, concurrency: int, prompt_tokens: int,
                       output_tokens: int, vocab_size: int = 512, seed: int = 0) -> LoadResult:
    return asyncio.run(_run_load(base_url, num_requests, concurrency, prompt_tokens, output_tokens,
                                 vocab_size, seed))


def bench_engine_decode(bin_dir: Path, *, model: str, dtype: str, num_seqs: int, prompt_tokens: int,
                        output_tokens: int, timeout_s: float = 600) -> dict:
    """Runs bench_engine --mode decode; returns its decode and overall output tokens/s."""
    out = subprocess.run([str(bin_dir / "bench_engine"), "--mode", "decode", "--model", model,
                          "--dtype", dtype, "--num-seqs", str(num_seqs), "--prompt-tokens",
                          str(prompt_tokens), "--output-tokens", str(output_tokens)],
                         capture_output=True, text=True, timeout=timeout_s, check=True,
                         env={**os.environ, "OMP_WAIT_POLICY": "passive"})  # as the worker runs
    # | model | num_seqs | prompt+output | decode tok/s | output tok/s |
    row = [line for line in out.stdout.splitlines() if line.startswith("|")][-1]
    cells = [c.strip() for c in row.strip("|").split("|")]
    return {"decode_tokens_per_s": float(cells[3]), "output_tokens_per_s": float(cells[4])}


def engine_worker_args(num_seqs: int, prompt_tokens: int, dtype: str) -> list[str]:
    """Worker flags that give the engine bench_engine's decode-mode settings: every sequence
    runs at once and all prompts fit one step."""
    return ["--dtype", dtype, "--max-num-seqs", str(num_seqs),
            "--max-num-batched-tokens", str(max(256, prompt_tokens * num_seqs))]


def loss_percent(http_tps: float, engine_tps: float) -> float:
    return 100.0 * (1.0 - http_tps / engine_tps) if engine_tps else float("nan")

