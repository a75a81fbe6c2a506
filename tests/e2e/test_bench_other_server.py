"""`strata bench` against a second, independent implementation of /v1/completions: a small
stdlib HTTP server written here that streams SSE with chunked encoding and, like llama.cpp's
llama-server under load, closes a kept-alive connection instead of answering its second
request. bench must retry those (on a fresh connection, counted), lose no request, and count
exactly the tokens the server sent."""
from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import BIN

OUTPUT_TOKENS = 5
INPUT_TOKENS = 8
NUM_REQUESTS = 8
CONCURRENCY = [1, 4]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.answered: list[tuple[int, int]] = []  # (prompt tokens, completion tokens) sent
        self.dropped = 0


class OneRequestPerConnection(BaseHTTPRequestHandler):
    """Answers the first request of each connection; reads the second, then closes."""
    protocol_version = "HTTP/1.1"
    answered_one = False

    def log_message(self, *args):
        pass

    def dropped(self) -> bool:
        if not self.answered_one:
            return False
        with self.server.stats.lock:
            self.server.stats.dropped += 1
        self.close_connection = True
        return True

    def send_json(self, status: int, body: dict):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.answered_one = True

    def do_GET(self):
        if self.dropped():
            return
        if self.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [{"id": "sse-test-model", "object": "model"}]})
        else:
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})

    def chunk(self, text: str):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        if self.dropped():
            return
        if self.path != "/v1/completions":
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        prompt, n = len(body["prompt"]), body["max_tokens"]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        while sent < n:
            k = min(1 + sent % 2, n - sent)  # chunks of 1 and 2 tokens, as servers batch them
            event = {"object": "text_completion", "model": "sse-test-model",
                     "choices": [{"index": 0, "text": "ab"[:k], "token_ids": list(range(sent, sent + k)),
                                  "finish_reason": None}]}
            self.chunk(f"data: {json.dumps(event)}\n\n")
            sent += k
        usage = {"choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": sent,
                                          "total_tokens": prompt + sent}}
        self.chunk(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        self.answered_one = True
        with self.server.stats.lock:
            self.server.stats.answered.append((prompt, sent))


@pytest.fixture
def sse_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), OneRequestPerConnection)
    server.daemon_threads = True
    server.stats = Stats()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_bench(port: int, json_path, *extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "strata"), "bench", "--url", f"http://127.0.0.1:{port}",
         "--concurrency", ",".join(map(str, CONCURRENCY)), "--num-requests", str(NUM_REQUESTS),
         "--input-tokens", str(INPUT_TOKENS), "--output-tokens", str(OUTPUT_TOKENS),
         "--no-server-metrics", "--output-json", str(json_path), *extra],
        capture_output=True, timeout=120)


def test_bench_retries_closed_connections_and_counts_what_was_sent(sse_server, tmp_path):
    out = run_bench(sse_server.server_address[1], tmp_path / "bench.json", "--cost-per-hour", "3.6")
    assert out.returncode == 0, out.stderr.decode()
    report = json.loads((tmp_path / "bench.json").read_text())
    points = report["load_points"]
    assert [p["num_ok"] for p in points] == [NUM_REQUESTS] * len(CONCURRENCY), out.stdout.decode()
    requests = [r for p in points for r in p["requests"]]
    assert all(r["ok"] for r in requests), [r["failure"] for r in requests if not r["ok"]]
    assert all(r["output_tokens"] == OUTPUT_TOKENS for r in requests)
    assert all(p["usage_mismatches"] == 0 for p in points)

    stats = sse_server.stats
    # The warm-up request (answered before any load point starts) and the measured ones,
    # each answered once.
    assert len(stats.answered) == 1 + len(requests)
    measured = stats.answered[1:]
    assert sum(c for _, c in measured) == sum(r["output_tokens"] for r in requests)
    assert sum(p for p, _ in measured) == sum(r["input_tokens"] for r in requests)
    # Every reused connection was closed unanswered, and bench retried each of those.
    assert stats.dropped > 0
    assert sum(p["retries"] for p in points) == stats.dropped
    assert "retries after the server closed the connection" in out.stdout.decode()

    for p in points:
        want = 3.6 * p["duration_s"] / 3600 / p["num_ok"]
        assert p["cost_per_request_usd"] == pytest.approx(want, rel=1e-9)
    assert "USD / request" in out.stdout.decode()


def test_cost_is_left_out_without_cost_per_hour(sse_server, tmp_path):
    out = run_bench(sse_server.server_address[1], tmp_path / "bench.json")
    assert out.returncode == 0, out.stderr.decode()
    report = json.loads((tmp_path / "bench.json").read_text())
    assert all(p["cost_per_request_usd"] is None for p in report["load_points"])
    assert "USD / request" not in out.stdout.decode()
