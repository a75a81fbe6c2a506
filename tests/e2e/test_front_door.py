"""The event-driven front door's behaviour, on real processes: whole-request deadlines (not
per read), connection caps answered with 429/503 and an OpenAI error body, pipelined
requests answered in order. test_front_door_load.py holds its latency under thousands of
connections."""
from __future__ import annotations

import json
import socket
import time

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


def admitted_connection(port: int, source: str) -> socket.socket:
    """A connection from `source` that the server has taken: it answered a request on it. The
    connections of StrataServer's readiness polls may still be closing (and counted) when a
    test starts; a refused try waits for them."""
    for _ in range(50):
        c = socket.socket()
        c.bind((source, 0))
        c.settimeout(10)
        c.connect(("127.0.0.1", port))
        c.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, _, _, _ = read_response(c)
        if status == 200:
            return c
        c.close()
        time.sleep(0.1)
    raise AssertionError(f"no connection from {source} was taken")


def refusal(port: int, source: str) -> tuple[int, dict, bytes]:
    with socket.socket() as c:
        c.bind((source, 0))
        c.settimeout(10)
        c.connect(("127.0.0.1", port))
        status, headers, body, _ = read_response(c)
    return status, headers, body


def test_connection_caps_answer_429_and_503_with_an_error_body():
    with StrataServer("builtin:tiny", router_args=["--max-connections-per-client", "4",
                                                   "--max-connections", "16"]) as s:
        held = [admitted_connection(s.port, "127.0.0.1") for _ in range(4)]
        try:
            status, _, body = refusal(s.port, "127.0.0.1")
            assert status == 429, body
            assert "--max-connections-per-client" in json.loads(body)["error"]["message"]
            held.pop().close()
            held.append(admitted_connection(s.port, "127.0.0.1"))  # room again once one closes
            held += [admitted_connection(s.port, loopback_address(100 + i)) for i in range(12)]
            status, headers, body = refusal(s.port, loopback_address(200))
            assert status == 503 and headers.get("retry-after") == "1", body
            assert "--max-connections" in json.loads(body)["error"]["message"]
        finally:
            for c in held:
                c.close()
