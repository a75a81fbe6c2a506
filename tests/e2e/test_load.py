"""A bounded load test: 512 streaming completions, 256 at once, on builtin:tiny. Every
request must succeed and end with [DONE]; throughput over HTTP and on the in-process
engine for the same workload is printed (never asserted: this machine is shared)."""
from __future__ import annotations

import pytest

from conftest import BIN, StrataServer
from load_client import bench_engine_decode, engine_worker_args, loss_percent, run_streaming_load

NUM_REQUESTS = 512
CONCURRENCY = 256
PROMPT_TOKENS = 16
OUTPUT_TOKENS = 16
DTYPE = "fp32"


@pytest.fixture(scope="module")
def server():
    with StrataServer("builtin:tiny",
                      router_args=["--http-threads", str(CONCURRENCY + 64)],
                      worker_args=engine_worker_args(CONCURRENCY, PROMPT_TOKENS, DTYPE)) as s:
        yield s


def test_many_concurrent_streams_all_succeed(server):
    result = run_streaming_load(server.base_url, num_requests=NUM_REQUESTS, concurrency=CONCURRENCY,
                                prompt_tokens=PROMPT_TOKENS, output_tokens=OUTPUT_TOKENS)
    assert result.failures == [], result.failures[:5]
    assert result.completed == NUM_REQUESTS
    assert result.output_tokens == NUM_REQUESTS * OUTPUT_TOKENS
    ttft = sorted(result.ttft_s)
    print(f"\nload: {NUM_REQUESTS} streams, {CONCURRENCY} at once, {PROMPT_TOKENS}+{OUTPUT_TOKENS} "
          f"tokens: {result.seconds:.2f} s, {result.output_tokens_per_s:.0f} output tokens/s, "
          f"TTFT p50 {1000 * ttft[len(ttft) // 2]:.0f} ms, p99 {1000 * ttft[int(len(ttft) * 0.99)]:.0f} ms")
    assert server.alive()


def test_router_overhead_is_reported(server):
    """One wave of CONCURRENCY streams over HTTP vs bench_engine on the same sequences. On
    builtin:tiny the Python client, not the engine, bounds the HTTP figure; see
    tools/bench_http_overhead.py for the measurement with a model that loads the engine."""
    http = run_streaming_load(server.base_url, num_requests=CONCURRENCY, concurrency=CONCURRENCY,
                              prompt_tokens=PROMPT_TOKENS, output_tokens=OUTPUT_TOKENS, seed=1)
    assert http.failures == [], http.failures[:5]
    engine = bench_engine_decode(BIN, model="builtin:tiny", dtype=DTYPE, num_seqs=CONCURRENCY,
                                 prompt_tokens=PROMPT_TOKENS, output_tokens=OUTPUT_TOKENS)
    print(f"\nrouter overhead, builtin:tiny {CONCURRENCY} x {PROMPT_TOKENS}+{OUTPUT_TOKENS}: "
          f"HTTP {http.output_tokens_per_s:.0f} output tokens/s, engine "
          f"{engine['output_tokens_per_s']:.0f} output tokens/s, loss "
          f"{loss_percent(http.output_tokens_per_s, engine['output_tokens_per_s']):.1f} %")
