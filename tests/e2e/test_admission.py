"""The router scheduler in the request path: with --admission-policy reserve-max, and with
predicted + --order sjf, 24 concurrent greedy completions come back with the same texts as
from the default (on-demand, fcfs) server, and a small --max-queue-requests still answers
429 with Retry-After."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import StrataServer, metric_value

NUM_REQUESTS = 24
PROMPTS = [f"request {i}: the quick brown fox" for i in range(NUM_REQUESTS)]
WORKER_ARGS = ["--max-num-seqs", "64"]


def complete_all(server: StrataServer) -> list[str]:
    def one(prompt: str) -> str:
        r = httpx.post(server.url("/v1/completions"), timeout=60,
                       json={"prompt": prompt, "max_tokens": 32, "temperature": 0,
                             "ignore_eos": True})
        assert r.status_code == 200, r.text
        choice = r.json()["choices"][0]
        assert choice["finish_reason"] == "length"
        return choice["text"]

    with ThreadPoolExecutor(max_workers=NUM_REQUESTS) as pool:
        return list(pool.map(one, PROMPTS))


@pytest.fixture(scope="module")
def default_texts():
    with StrataServer(worker_args=WORKER_ARGS) as server:
        return complete_all(server)


@pytest.mark.parametrize("policy", [["--admission-policy", "reserve-max"],
                                    ["--admission-policy", "predicted", "--order", "sjf"]],
                         ids=["reserve-max", "predicted-sjf"])
def test_scheduled_policies_serve_the_same_greedy_texts_as_the_default(policy, default_texts):
    with StrataServer(router_args=policy, worker_args=WORKER_ARGS) as server:
        assert complete_all(server) == default_texts
        assert server.alive()


@pytest.mark.parametrize("policy", [["--admission-policy", "reserve-max"],
                                    ["--admission-policy", "predicted", "--order", "sjf"]],
                         ids=["reserve-max", "predicted-sjf"])
def test_small_queue_answers_429_with_retry_after_under_a_scheduled_policy(policy):
    with StrataServer(router_args=[*policy, "--max-queue-requests", "2"],
                      worker_args=["--threads", "1"]) as server:
        statuses = []

        def long_request():
            r = httpx.post(server.url("/v1/completions"), timeout=60,
                           json={"prompt": "x", "max_tokens": 1500, "ignore_eos": True})
            statuses.append(r.status_code)

        threads = [threading.Thread(target=long_request) for _ in range(2)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while "strata_router_queue_length 2" not in server.metrics():
            assert time.monotonic() < deadline, "the two requests never got in flight"
            time.sleep(0.02)
        r = httpx.post(server.url("/v1/completions"), json={"prompt": "hi", "max_tokens": 4})
        assert r.status_code == 429, r.text
        assert r.headers.get("retry-after") == "1"
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
        for t in threads:
            t.join(timeout=60)
        assert statuses == [200, 200]
        r = httpx.post(server.url("/v1/completions"), json={"prompt": "hi", "max_tokens": 4})
        assert r.status_code == 200, r.text


def test_forced_lengths_timeouts_and_prediction_metrics_under_reserve_max():
    """stop_after_tokens ends an answer as EOS would; a request that cannot be admitted
    before its own `timeout` comes back when the timeout passes, not when room opens; the
    router exports how answers compared with its predictions."""
    # llama-110m on one thread with a 40 MiB cache (33 blocks of 16 positions): one request
    # asking for 500 tokens is all reserve-max admits at a time, and it takes seconds.
    with StrataServer(model="builtin:llama-110m",
                      router_args=["--admission-policy", "reserve-max"],
                      worker_args=["--threads", "1", "--kv-cache-mb", "40"]) as server:
        r = httpx.post(server.url("/v1/completions"), timeout=60,
                       json={"prompt": [5, 6, 7], "max_tokens": 50, "stop_after_tokens": 7,
                             "temperature": 0})
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["finish_reason"] == "stop"
        assert r.json()["usage"]["completion_tokens"] == 7

        results = {}

        def long_request():
            r = httpx.post(server.url("/v1/completions"), timeout=120,
                           json={"prompt": [5, 6], "max_tokens": 500, "ignore_eos": True})
            results["long"] = (r.status_code, r.json()["usage"]["completion_tokens"])

        t = threading.Thread(target=long_request)
        t.start()
        deadline = time.monotonic() + 20
        while metric_value(server.metrics(), "strata_kv_blocks_used", 'group="g0"') in (None, 0.0):
            assert time.monotonic() < deadline, "the long request never started"
            time.sleep(0.02)
        start = time.monotonic()
        r = httpx.post(server.url("/v1/completions"), timeout=60,
                       json={"prompt": [5, 6], "max_tokens": 500, "ignore_eos": True, "timeout": 1.0})
        waited = time.monotonic() - start
        assert r.status_code == 200, r.text
        assert r.json()["usage"]["completion_tokens"] == 0
        assert 0.9 <= waited < 4, f"the timed-out request came back after {waited:.2f} s"
        assert "long" not in results, "the long request should still be running"
        t.join(timeout=120)
        assert results["long"] == (200, 500)
        metrics = server.metrics()
        # Two answers taught the predictor (the timed-out one did not).
        assert metric_value(metrics, "strata_output_length_actual_over_predicted_count") == 2.0
        assert metric_value(metrics, "strata_admission_quantile") is not None
        assert server.alive()


def test_predictor_state_survives_a_router_restart(tmp_path):
    """--predictor-snapshot: what the length predictor learned is written when the router
    stops and read when it starts; a damaged file stops the router with a message naming it."""
    snapshot = tmp_path / "predictor.json"
    args = ["--admission-policy", "predicted", "--predictor-snapshot", str(snapshot)]
    with StrataServer(router_args=args) as server:
        for n in (3, 5, 7):
            r = httpx.post(server.url("/v1/completions"), timeout=60,
                           json={"prompt": "hello", "max_tokens": 64, "stop_after_tokens": n})
            assert r.status_code == 200, r.text
    saved = json.loads(snapshot.read_text())
    assert saved["version"] == 1
    assert saved["tick"] == 3  # three answers observed
    with StrataServer(router_args=args) as server:
        r = httpx.post(server.url("/v1/completions"), timeout=60,
                       json={"prompt": "hello", "max_tokens": 64, "stop_after_tokens": 4})
        assert r.status_code == 200, r.text
        assert "predictor state loaded" in server.log_tail()
    assert json.loads(snapshot.read_text())["tick"] == 4  # it went on from the saved state
    snapshot.write_text("{not json")
    with pytest.raises(RuntimeError, match="predictor"):
        StrataServer(router_args=args).start()
