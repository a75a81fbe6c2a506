"""Overload and outage answers: 429 with Retry-After when the router's queue is full, 503
when no worker group is live — each with an OpenAI error body — and service resumes."""
from __future__ import annotations

import subprocess
import tempfile
import threading
import time
import uuid

import httpx

from conftest import BIN, StrataServer, free_port, _child_env


def assert_openai_error(response, status):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    return error


def test_no_live_worker_group_answers_503_and_health_says_why():
    port = free_port()
    endpoint = f"ipc://{tempfile.gettempdir()}/strata-e2e-503-{uuid.uuid4().hex[:8]}.sock"
    router = subprocess.Popen([str(BIN / "strata-router"), "--port", str(port), "--zmq-endpoint", endpoint],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_child_env())
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(base + "/health", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "router did not start"
                time.sleep(0.05)
        assert health.status_code == 503
        assert httpx.get(base + "/ready").status_code == 503
        r = httpx.post(base + "/v1/completions", json={"prompt": "hi", "max_tokens": 4})
        error = assert_openai_error(r, 503)
        assert r.headers.get("retry-after") == "1"
        assert "worker" in error["message"]
        r = httpx.post(base + "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
        assert_openai_error(r, 503)
    finally:
        router.terminate()
        router.wait(timeout=10)


def test_full_queue_answers_429_with_retry_after_then_recovers():
    with StrataServer(router_args=["--max-queue-requests", "2"], worker_args=["--threads", "1"]) as server:
        base = server.base_url
        # On a loaded machine the two long requests can finish between the gauge reading 2
        # and the third request: only an answer given while both still ran counts.
        for _attempt in range(5):
            error, retry_after, statuses = third_request_while_two_run(base)
            if error is not None:
                break
        assert error is not None, "a third request was never refused while two ran"
        assert retry_after == "1"
        assert "2" in error["message"]
        assert statuses == [200, 200]
        r = httpx.post(base + "/v1/completions", json={"prompt": "hi", "max_tokens": 4})
        assert r.status_code == 200, r.text


def third_request_while_two_run(base):
    """Starts two long requests, waits until both are in flight, sends a third. Returns its
    error body (None when it was served because a long one had already ended), its
    Retry-After header, and the two long requests' statuses."""
    statuses = []

    def long_request():
        r = httpx.post(base + "/v1/completions", timeout=60,
                       json={"prompt": "x", "max_tokens": 1500, "ignore_eos": True})
        statuses.append(r.status_code)

    threads = [threading.Thread(target=long_request) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while "strata_router_queue_length 2" not in httpx.get(base + "/metrics").text:
        assert time.monotonic() < deadline, "the two requests never got in flight"
        time.sleep(0.02)
    r = httpx.post(base + "/v1/completions", json={"prompt": "hi", "max_tokens": 4})
    for t in threads:
        t.join(timeout=60)
    if r.status_code == 200:
        return None, None, statuses
    return assert_openai_error(r, 429), r.headers.get("retry-after"), statuses
