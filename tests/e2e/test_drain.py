"""SIGTERM — what Kubernetes sends before it stops a pod — while streams run: the router
drains. /ready turns 503 at once, new requests get 503, the requests in flight go on for
up to --drain-timeout-s, and whatever is still running then ends with an error event and a
well-formed end ([DONE], then the chunked body's last chunk). httpx raises on a body cut
mid-chunk, so every stream read to its end here ended properly."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from conftest import BIN, StrataServer, free_port, kill_group, metric_value, spawn, wait_for

C = "/v1/completions"
NUM_STREAMS = 32
DRAIN_S = 3  # the short drain time: the checks of assert_draining fit in it on a loaded host too
STREAM_PROMPT_TOKENS = 17  # "Once upon a time": BOS and 16 bytes (builtin:tiny's byte tokenizer)


def sse_lines(response: httpx.Response):
    """Lines split at "\n" only: the tiny model's random text holds other line breaks
    (U+2028, U+0085) that httpx's iter_lines would split JSON at."""
    pending = b""
    for chunk in response.iter_bytes():
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.rstrip(b"\r").decode()


class Streams:
    """NUM_STREAMS streamed completions on their own threads; started() once each has an event."""

    def __init__(self, base_url: str, max_tokens: int):
        self.base_url, self.max_tokens = base_url, max_tokens
        self.lock = threading.Lock()
        self.with_events = 0
        self.started = threading.Condition(self.lock)
        self.signalled_at = float("inf")
        self.events_after_signal = 0
        self.pool = ThreadPoolExecutor(max_workers=NUM_STREAMS)
        self.futures = [self.pool.submit(self.read_one) for _ in range(NUM_STREAMS)]

    def read_one(self) -> tuple[int, list[dict], bool]:
        body = {"prompt": "Once upon a time", "max_tokens": self.max_tokens, "ignore_eos": True,
                "stream": True, "stream_options": {"include_usage": True}}
        events, done = [], False
        with httpx.Client(timeout=120) as client:
            with client.stream("POST", self.base_url + C, json=body) as r:
                if r.status_code != 200:
                    return r.status_code, [json.loads(r.read())], done
                for line in sse_lines(r):
                    if not line.startswith("data: "):
                        continue
                    assert not done, "an event after [DONE]"
                    if line == "data: [DONE]":
                        done = True
                        continue
                    events.append(json.loads(line[len("data: "):]))
                    with self.lock:
                        if len(events) == 1:
                            self.with_events += 1
                            self.started.notify_all()
                        if time.monotonic() > self.signalled_at:
                            self.events_after_signal += 1
                return r.status_code, events, done

    def results(self) -> list[tuple[int, list[dict], bool]]:
        out = [f.result(timeout=180) for f in self.futures]
        self.pool.shutdown()
        return out


def sigterm_router(server: StrataServer, streams: Streams, running: int):
    """SIGTERM once `running` streams have had their first event."""
    router = server.procs[0]
    with streams.lock:
        assert streams.started.wait_for(lambda: streams.with_events >= running, timeout=60), \
            f"{streams.with_events} of {running} streams started"
        streams.signalled_at = time.monotonic()
    os.kill(router.pid, signal.SIGTERM)  # the router alone, as the kubelet signals a container
    return router


def assert_draining(server: StrataServer):
    deadline = time.monotonic() + 1.0
    while True:
        r = httpx.get(server.url("/ready"), timeout=5)
        if r.status_code == 503:
            break
        assert time.monotonic() < deadline, "/ready still 200 a second after SIGTERM"
        time.sleep(0.02)
    assert r.json() == {"ready": False, "draining": True}
    assert httpx.get(server.url("/health"), timeout=5).status_code == 200  # alive: not to be killed
    late = httpx.post(server.url(C), json={"prompt": "a", "max_tokens": 2}, timeout=10)
    assert late.status_code == 503, late.text
    assert "shutting down" in late.json()["error"]["message"]


def test_streams_in_flight_finish_during_the_drain():
    with StrataServer("builtin:tiny", router_args=["--drain-timeout-s", "120"]) as server:
        streams = Streams(server.base_url, max_tokens=1900)
        router = sigterm_router(server, streams, running=NUM_STREAMS)
        assert_draining(server)
        results = streams.results()
        assert router.wait(timeout=30) == 0
    for status, events, done in results:
        assert status == 200 and done
        assert "error" not in events[-2], events[-2]
        assert events[-2]["choices"][0]["finish_reason"] == "length"
        assert events[-1]["usage"]["completion_tokens"] == 1900
    assert streams.events_after_signal > 0, "every stream had finished before SIGTERM: nothing drained"


def test_what_outlives_the_drain_time_ends_with_an_error_event_and_a_proper_end():
    with StrataServer("builtin:tiny", router_args=["--drain-timeout-s", str(DRAIN_S)],
                      worker_args=["--max-num-seqs", "8"]) as server:
        prompt_tokens = lambda: metric_value(server.metrics(), "strata_prompt_tokens_total")
        # The worker runs 8 at a time: the rest wait in its queue, the non-streamed request last.
        streams = Streams(server.base_url, max_tokens=1900)
        wait_for(lambda: prompt_tokens() == NUM_STREAMS * STREAM_PROMPT_TOKENS, 30, "every stream to arrive")
        with ThreadPoolExecutor(max_workers=1) as pool:
            whole = pool.submit(httpx.post, server.url(C),
                                json={"prompt": "b", "max_tokens": 1900, "ignore_eos": True}, timeout=60)
            wait_for(lambda: prompt_tokens() == NUM_STREAMS * STREAM_PROMPT_TOKENS + 2, 30,
                     "the non-streamed request to arrive")
            router = sigterm_router(server, streams, running=8)
            signalled = time.monotonic()
            assert_draining(server)
            results = streams.results()
            ended_within = time.monotonic() - signalled
            whole = whole.result()
        assert router.wait(timeout=30) == 0
    assert ended_within < DRAIN_S + 5 + 3, ended_within
    errors = 0
    for status, events, done in results:
        assert status == 200 and done
        failed = [e for e in events if "error" in e]
        if failed:  # the error event, then the usage chunk asked for
            errors += 1
            assert len(failed) == 1 and f"drain time ({DRAIN_S} s)" in failed[0]["error"]["message"], failed
            assert events[-1]["usage"]["completion_tokens"] < 1900
        else:
            assert events[-1]["usage"]["completion_tokens"] == 1900
    assert errors > 0, "no stream was still running when the drain time ran out"
    assert whole.status_code == 503, whole.text
    assert f"drain time ({DRAIN_S} s)" in whole.json()["error"]["message"]


def test_strata_serve_drains_the_router_before_it_stops_the_worker_group():
    """The launcher passes SIGTERM to the router alone and stops the worker group only once
    the router has drained: the streams in flight finish."""
    port = free_port()
    serve = spawn([str(BIN / "strata"), "serve", "--model", "builtin:tiny", "--port", str(port),
                   "--drain-timeout-s", "120"], "serve-drain")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: serve.poll() is None and httpx.get(base + "/ready", timeout=1).status_code == 200,
                 60, "strata serve to be ready")
        streams = Streams(base, max_tokens=1900)
        with streams.lock:
            assert streams.started.wait_for(lambda: streams.with_events == NUM_STREAMS, timeout=60)
            streams.signalled_at = time.monotonic()
        serve.send_signal(signal.SIGTERM)
        results = streams.results()
        assert serve.wait(timeout=30) == 0
    finally:
        kill_group(serve)
    for status, events, done in results:
        assert status == 200 and done
        assert events[-1]["usage"]["completion_tokens"] == 1900
    assert streams.events_after_signal > 0
