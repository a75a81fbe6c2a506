"""The event-driven front door's behaviour, on real processes: whole-request deadlines (not
per read), connection caps answered with 429/503 and an OpenAI error body, pipelined
requests answered in order. test_front_door_load.py holds its latency under thousands of
connections."""
from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from conftest import StrataServer
from front_door_clients import loopback_address, raise_open_file_limit, read_response

setup_module = raise_open_file_limit


@pytest.fixture(scope="module")
def server():
    with StrataServer("builtin:tiny") as s:
        yield s


def test_pipelined_requests_are_answered_in_order(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as c:
        body = json.dumps({"prompt": [1, 2, 3]}).encode()
        c.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                  b"POST /detokenize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body +
                  b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, _, first, rest = read_response(c)
        assert status == 200 and "groups" in json.loads(first)
        status, _, second, rest = read_response(c, rest)
        assert status == 400 and json.loads(second)["error"]["param"] == "tokens"  # detokenize takes `tokens`
        status, _, third, rest = read_response(c, rest)
        assert status == 200 and json.loads(third)["object"] == "list"


def test_a_whole_request_deadline_not_a_per_read_one():
    """A byte every 0.3 s never trips a per-read timeout; the head's deadline ends it."""
    with StrataServer("builtin:tiny", router_args=["--read-timeout-s", "2"]) as s:
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
            start = time.monotonic()
            answer = b""
            for byte in b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
                try:
                    c.sendall(bytes([byte]))
                except OSError:
                    break
                c.settimeout(0.3)
                try:
                    answer += c.recv(65536)
                    break
                except socket.timeout:
                    pass
            elapsed = time.monotonic() - start
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert 1.5 < elapsed < 4.0, elapsed
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["message"]


def test_connection_caps_answer_429_and_503_with_an_error_body():
    with StrataServer("builtin:tiny", router_args=["--max-connections-per-client", "4",
                                                   "--max-connections", "16"]) as s:
        mine = [socket.create_connection(("127.0.0.1", s.port), timeout=10) for _ in range(4)]
        try:
            time.sleep(0.2)
            with socket.create_connection(("127.0.0.1", s.port), timeout=10) as extra:
                status, headers, body, _ = read_response(extra)
            assert status == 429, body
            assert "--max-connections-per-client" in json.loads(body)["error"]["message"]
            mine.pop().close()
            time.sleep(0.2)
            assert httpx.get(s.url("/health"), timeout=5).status_code == 200  # room again
            others = []
            for i in range(13):
                c = socket.socket()
                c.bind((loopback_address(100 + i), 0))
                c.connect(("127.0.0.1", s.port))
                others.append(c)
            time.sleep(0.2)
            c = socket.socket()
            c.bind((loopback_address(200), 0))
            c.settimeout(10)
            c.connect(("127.0.0.1", s.port))
            status, headers, body, _ = read_response(c)
            c.close()
            assert status == 503 and headers.get("retry-after") == "1", body
            assert "--max-connections" in json.loads(body)["error"]["message"]
            for c in others:
                c.close()
        finally:
            for c in mine:
                c.close()
