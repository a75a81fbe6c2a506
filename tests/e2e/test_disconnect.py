"""Clients that go away mid-stream: their requests are aborted, every KV block comes back,
and the server goes on serving."""
from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import StrataServer, metric_value

NUM_REQUESTS = 50
# Long (with ignore_eos), but the tiny model can still finish a request while a starved client
# thread has yet to read its first events: such a request ends by `length`, not `abort`.
MAX_TOKENS = 1900


@pytest.fixture(scope="module")
def server():
    with StrataServer("builtin:tiny", worker_args=["--max-num-seqs", "16"]) as s:
        yield s


def stream_and_cut(base_url: str, chunks_to_read: int, chat: bool) -> int:
    """Reads `chunks_to_read` SSE events, then closes the connection; returns events read."""
    path = "/v1/chat/completions" if chat else "/v1/completions"
    body = {"max_tokens": MAX_TOKENS, "ignore_eos": True, "stream": True, "temperature": 1.0}
    if chat:
        body["messages"] = [{"role": "user", "content": "Tell me a long story."}]
    else:
        body["prompt"] = "Once upon a time"
    read = 0
    with httpx.Client(timeout=30) as client:
        with client.stream("POST", base_url + path, json=body) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("data: "):
                    assert line != "data: [DONE]", "the stream ended before it was cut"
                    read += 1
                    if read >= chunks_to_read:
                        break
    return read


def test_cut_streams_free_every_kv_block(server):
    rng = random.Random(1234)
    cuts = [rng.randint(1, 40) for _ in range(NUM_REQUESTS)]
    def finished_by_reason(text: str) -> dict[str, float]:
        return {reason: metric_value(text, "strata_requests_total", f'finish_reason="{reason}"') or 0
                for reason in ("abort", "length", "stop", "error")}

    before = finished_by_reason(server.metrics())
    with ThreadPoolExecutor(max_workers=10) as pool:
        read = list(pool.map(lambda ic: stream_and_cut(server.base_url, ic[1], ic[0] % 2 == 1),
                             enumerate(cuts)))
    assert read == cuts

    deadline = time.monotonic() + 5.0
    while True:
        text = server.metrics()
        used = metric_value(text, "strata_kv_blocks_used", 'group="g0"')
        ended = {r: n - before[r] for r, n in finished_by_reason(text).items()}
        running = metric_value(text, "strata_requests_running", 'group="g0"')
        if used == 0 and sum(ended.values()) >= NUM_REQUESTS and running == 0:
            break
        assert time.monotonic() < deadline, (
            f"5 s after the cuts: kv_blocks_used={used}, ended={ended}, running={running}")
        time.sleep(0.1)
    assert ended["stop"] == 0 and ended["error"] == 0, ended
    # Most streams are cut long before their 1900 tokens: the abort path must be what ended them.
    assert ended["abort"] >= NUM_REQUESTS * 0.8, ended
    assert metric_value(text, "strata_kv_blocks_total", 'group="g0"') > 0
    assert metric_value(text, "strata_router_queue_length") == 0


def test_server_serves_normally_after_the_cuts(server):
    r = httpx.post(server.url("/v1/completions"),
                   json={"prompt": "after", "max_tokens": 8, "ignore_eos": True}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["completion_tokens"] == 8
    with httpx.stream("POST", server.url("/v1/completions"), timeout=30,
                      json={"prompt": "after", "max_tokens": 5, "stream": True}) as s:
        lines = [line for line in s.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
