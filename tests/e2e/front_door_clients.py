"""Clients the front-door tests share: raw sockets and http.client, so the figures are the
server's, not a client library's (httpx builds an SSL context per client, ~30 ms)."""
from __future__ import annotations

import http.client
import resource
import socket
import time

import httpx


def raise_open_file_limit():
    """Thousands of sockets in the test process too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def loopback_address(i: int) -> str:
    """127.0.0.0/8 is all loopback on Linux: distinct client addresses for the per-client cap."""
    return f"127.0.{1 + i // 250}.{1 + i % 250}"


def health_latencies(port: int, n: int, pause_s: float = 0.0) -> list[float]:
    """GET /health on a fresh connection each time: what a Kubernetes probe does."""
    out = []
    for _ in range(n):
        start = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/health")
        r = conn.getresponse()
        body = r.read()
        conn.close()
        out.append(time.monotonic() - start)
        assert r.status == 200, body
        time.sleep(pause_s)
    return out


def p99(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.99) - 1)]


def completion_ok(port: int) -> None:
    r = httpx.post(f"http://127.0.0.1:{port}/v1/completions",
                   json={"prompt": "hello", "max_tokens": 4, "temperature": 0}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["text"] is not None


def read_response(sock: socket.socket, buffer: bytes = b"") -> tuple[int, dict, bytes, bytes]:
    """One HTTP/1.1 response with a Content-Length body; returns it and the bytes after it."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {buffer!r}")
        buffer += chunk
    head, rest = buffer.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a body")
        rest += chunk
    return status, headers, rest[:length], rest[length:]
