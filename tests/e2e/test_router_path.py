"""One path through the router: every admission policy (`on-demand`, the default, as well as
`reserve-max` and `predicted`) serves requests through the same scheduler, queue bound and
length check. Under each: greedy completions, whole and streamed, give the tokens
`strata generate` gives offline; the one length check, after tokenizing, answers an
over-long request with the same 400; and the one queue bound, which counts every choice of
every unfinished request, answers 429 with Retry-After, then lets requests in again."""
from __future__ import annotations

import contextlib
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import BIN, StrataServer, _child_env, metric_value

POLICIES = ["on-demand", "reserve-max", "predicted"]
# llama-110m on one thread makes ~17 tokens/s: slow enough that the long requests of the
# queue check are still running when it looks, fast enough for short greedy answers.
MODEL = "builtin:llama-110m"
CONTEXT = 2048  # its context window
MAX_QUEUE_REQUESTS = 3
MAX_TOKENS = 12
PROMPTS = [[5, 6, 7], [100, 200, 300, 400, 500], [42]]


@pytest.fixture(scope="module")
def reference_ids() -> dict[tuple[int, ...], list[int]]:
    """Greedy token ids from `strata generate`: the engine alone, no router in the way."""
    out = {}
    for prompt in PROMPTS:
        run = subprocess.run([str(BIN / "strata"), "generate", "--model", MODEL,
                              "--prompt-ids", " ".join(map(str, prompt)), "--temperature", "0",
                              "--ignore-eos", "--max-tokens", str(MAX_TOKENS), "--output-ids",
                              "--threads", "1"],
                             capture_output=True, timeout=120, check=True, env=_child_env())
        ids = [int(t) for t in run.stdout.decode().split()]
        assert len(ids) == MAX_TOKENS, run.stdout
        out[tuple(prompt)] = ids
    return out


def completion(prompt, **extra) -> dict:
    return {"prompt": prompt, "max_tokens": MAX_TOKENS, "temperature": 0, "ignore_eos": True,
            "return_token_ids": True, **extra}


def whole(server: StrataServer, prompt) -> tuple[str, list[int]]:
    r = httpx.post(server.url("/v1/completions"), json=completion(prompt), timeout=60)
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "length"
    return choice["text"], choice["token_ids"]


def streamed(server: StrataServer, prompt) -> tuple[str, list[int]]:
    text, ids, finish, done = "", [], None, False
    with httpx.stream("POST", server.url("/v1/completions"), json=completion(prompt, stream=True),
                      timeout=60) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                done = True
                break
            choice = json.loads(line[len("data: "):])["choices"][0]
            text += choice["text"]
            ids += choice["token_ids"]
            finish = choice["finish_reason"] or finish
    assert done and finish == "length"
    return text, ids


def queue_length(server: StrataServer) -> float | None:
    return metric_value(server.metrics(), "strata_router_queue_length")


def wait_queue_length(server: StrataServer, n: int):
    deadline = time.monotonic() + 20
    while queue_length(server) != n:
        assert time.monotonic() < deadline, f"the router never held {n} requests"
        time.sleep(0.02)


def assert_queue_full(response):
    assert response.status_code == 429, response.text
    assert response.headers.get("retry-after") == "1"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "rate_limit_exceeded"
    assert f"`max_queue_requests` ({MAX_QUEUE_REQUESTS})" in error["message"], error


def check_greedy_output(server: StrataServer, reference_ids):
    # Whole and streamed at once, so that requests share the worker's batches.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for prompt in PROMPTS:
            got_whole, got_streamed = pool.map(lambda f: f(server, prompt), [whole, streamed])
            assert got_whole[1] == reference_ids[tuple(prompt)], prompt
            assert got_streamed == got_whole, prompt


def check_length_limit(server: StrataServer):
    cases = [({"prompt": [7] * (CONTEXT + 52), "max_tokens": 1}, "prompt", f"Given: {CONTEXT + 52} + 1"),
             ({"prompt": [7, 8], "max_tokens": CONTEXT - 1}, "prompt", f"Given: 2 + {CONTEXT - 1}"),
             ({"prompt": [7, 8], "max_tokens": 5000}, "max_tokens", "Given: 2 + 5000")]
    for body, param, given in cases:
        for stream in (False, True):
            r = httpx.post(server.url("/v1/completions"), json={**body, "stream": stream}, timeout=30)
            assert r.status_code == 400, r.text
            error = r.json()["error"]
            assert error["param"] == param and error["code"] == "context_length_exceeded", error
            assert error["message"] == (f"`prompt` tokens + `max_tokens` must be <= {CONTEXT}. "
                                        f"{given}. Shorten the prompt or lower `max_tokens`."), error


def check_queue_bound(server: StrataServer):
    long_body = {"prompt": [5], "max_tokens": 1500, "ignore_eos": True, "stream": True}
    with contextlib.ExitStack() as streams:
        def open_long():
            r = streams.enter_context(httpx.stream("POST", server.url("/v1/completions"),
                                                   json=long_body, timeout=60))
            assert r.status_code == 200

        open_long()
        open_long()
        wait_queue_length(server, 2)
        # One slot left, but a request of two choices needs two: all or nothing.
        assert_queue_full(httpx.post(server.url("/v1/completions"), timeout=30,
                                     json={"prompt": "hi", "max_tokens": 4, "n": 2}))
        open_long()
        wait_queue_length(server, MAX_QUEUE_REQUESTS)
        assert_queue_full(httpx.post(server.url("/v1/completions"), json={"prompt": "hi", "max_tokens": 4},
                                     timeout=30))
    # The clients went away: their requests are aborted and the queue empties.
    wait_queue_length(server, 0)
    r = httpx.post(server.url("/v1/completions"), json={"prompt": "hi", "max_tokens": 4, "n": 2},
                   timeout=60)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("policy", POLICIES)
def test_every_admission_policy_takes_the_one_router_path(policy, reference_ids):
    with StrataServer(MODEL, router_args=["--admission-policy", policy,
                                   "--max-queue-requests", str(MAX_QUEUE_REQUESTS)],
                      worker_args=["--threads", "1"]) as server:
        check_greedy_output(server, reference_ids)
        check_length_limit(server)
        check_queue_bound(server)
        assert queue_length(server) == 0
        assert server.alive()
