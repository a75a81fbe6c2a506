#!/usr/bin/env python3
"""Latency of small HTTP requests to a running server, on one reused (keep-alive) connection
and on a fresh connection each: shows per-response stalls such as Nagle + delayed ACK.

    python3 tools/bench_http_latency.py http://127.0.0.1:8000 [--path /health] [--requests 200]
"""
from __future__ import annotations

import argparse
import http.client
import statistics
import time
from urllib.parse import urlsplit


def timed_request(conn: http.client.HTTPConnection, path: str) -> float:
    start = time.monotonic()
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise SystemExit(f"GET {path} answered {response.status}")
    return time.monotonic() - start


def summary(label: str, seconds: list[float], reconnects: int) -> str:
    ms = sorted(s * 1e3 for s in seconds)
    p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
    return (f"{label:>6}: {len(ms)} requests, median {statistics.median(ms):.2f} ms, "
            f"p99 {p99:.2f} ms, max {ms[-1]:.2f} ms, server-closed connections {reconnects}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--path", default="/health")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    where = urlsplit(args.url)
    host, port = where.hostname or "127.0.0.1", where.port or 80

    reused, closed = [], 0
    conn = http.client.HTTPConnection(host, port, timeout=10)
    for _ in range(args.requests):
        sock = conn.sock
        reused.append(timed_request(conn, args.path))
        closed += sock is not None and conn.sock is not sock
    conn.close()

    fresh = []
    for _ in range(args.requests):
        conn = http.client.HTTPConnection(host, port, timeout=10)
        fresh.append(timed_request(conn, args.path))
        conn.close()
    print(summary("reused", reused, closed))
    print(summary("fresh", fresh, 0))


if __name__ == "__main__":
    main()
