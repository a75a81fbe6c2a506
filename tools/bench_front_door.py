#!/usr/bin/env python3
"""The front door under connection load: /health latency on fresh connections (from a process
of its own, as a kubelet probes) and a normal completion's latency, while this process holds
N idle connections, N slow-loris clients (a header byte every --slow-interval-s) or N
concurrent streams. Prints one Markdown row per scenario; with --pid, the router's RSS too.

  python3 tools/bench_front_door.py http://127.0.0.1:8000 --pid ROUTER_PID \\
      --idle 4096 --slow 512 --streams 1024
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
from urllib.parse import urlparse

PROBES = """
import http.client, json, sys, time
host, port, n, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])

def call(method, path, body=None):
    start = time.monotonic()
    try:
        c = http.client.HTTPConnection(host, port, timeout=timeout)
        c.request(method, path, body, {"Content-Type": "application/json"})
        r = c.getresponse(); r.read(); c.close()
        return time.monotonic() - start, r.status
    except OSError:
        return time.monotonic() - start, 0  # refused, reset or timed out

health, completion = [], []
for i in range(n):
    health.append(call("GET", "/health"))
    if i % 10 == 0:
        completion.append(call("POST", "/v1/completions", json.dumps({"prompt": "hi", "max_tokens": 4})))
    time.sleep(0.02)
print(json.dumps({"health": health, "completion": completion}))
"""


def rss_mb(pid: int | None) -> str:
    if not pid:
        return "-"
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return f"{int(line.split()[1]) / 1024:.0f}"
    return "-"


async def probe(host: str, port: int, n: int, timeout: float) -> dict:
    p = await asyncio.create_subprocess_exec(sys.executable, "-c", PROBES, host, str(port), str(n), str(timeout),
                                             stdout=asyncio.subprocess.PIPE)
    out, _ = await p.communicate()
    return json.loads(out)


async def idle(host, port, n):
    return await open_many(host, port, n), []


async def open_many(host, port, n):
    """n connections; a server that does not accept them all in time leaves fewer."""
    conns = []
    for _ in range(n):
        try:
            conns.append(await asyncio.wait_for(asyncio.open_connection(host, port), 5))
        except (OSError, asyncio.TimeoutError):
            break
    return conns


async def slow(host, port, n, interval):
    conns = await open_many(host, port, n)

    async def trickle(w):
        w.write(f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".encode())
        while True:
            await asyncio.sleep(interval)
            w.write(b"a")

    return conns, [asyncio.ensure_future(trickle(w)) for _, w in conns]


async def streams(host, port, n, max_tokens):
    body = json.dumps({"prompt": "once upon a time", "max_tokens": max_tokens, "stream": True}).encode()
    conns = []
    for _ in range(n):
        r, w = await asyncio.open_connection(host, port)
        w.write(b"POST /v1/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % (host.encode(), len(body)) + body)
        conns.append((r, w))

    async def drain(r):
        while await r.read(65536):
            pass

    return conns, [asyncio.ensure_future(drain(r)) for r, _ in conns]


def row(name: str, result: dict, rss: str) -> str:
    """Latencies of the answered calls; calls not answered 200 (within --timeout-s) counted apart."""
    h = sorted(t for t, status in result["health"] if status == 200)
    comp = [t for t, status in result["completion"] if status == 200]
    ms = (lambda v: f"{v * 1e3:.1f}") if h else (lambda v: "-")
    p99 = h[max(0, int(len(h) * 0.99) - 1)] if h else 0
    return (f"| {name} | {ms(statistics.median(h) if h else 0)} | {ms(p99)} | {ms(h[-1] if h else 0)} | "
            f"{len(result['health']) - len(h)}/{len(result['health'])} | "
            f"{statistics.median(comp) * 1e3 if comp else float('nan'):.0f} | "
            f"{len(result['completion']) - len(comp)}/{len(result['completion'])} | {rss} |")


async def main_async(args):
    u = urlparse(args.url)
    host, port = u.hostname, u.port
    print("| load | /health median ms | p99 ms | max ms | /health failed | completion median ms | completions failed | router RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    scenarios = [("none", lambda: idle(host, port, 0))]
    if args.idle:
        scenarios.append((f"{args.idle} idle connections", lambda: idle(host, port, args.idle)))
    if args.slow:
        scenarios.append((f"{args.slow} slow-loris clients", lambda: slow(host, port, args.slow, args.slow_interval_s)))
    if args.streams:
        scenarios.append((f"{args.streams} concurrent streams", lambda: streams(host, port, args.streams, args.max_tokens)))
    for name, start in scenarios:
        conns, tasks = await start()
        await asyncio.sleep(1.0)
        result = await probe(host, port, args.probes, args.timeout_s)
        print(row(name, result, rss_mb(args.pid)), flush=True)
        for t in tasks:
            t.cancel()
        for _, w in conns:
            w.close()
        await asyncio.sleep(1.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url")
    ap.add_argument("--pid", type=int, help="the router's pid, for its RSS")
    ap.add_argument("--idle", type=int, default=4096)
    ap.add_argument("--slow", type=int, default=512)
    ap.add_argument("--slow-interval-s", type=float, default=1.0)
    ap.add_argument("--streams", type=int, default=1024)
    ap.add_argument("--max-tokens", type=int, default=400)
    ap.add_argument("--probes", type=int, default=100)
    ap.add_argument("--timeout-s", type=float, default=5.0, help="a call not answered by then counts as failed")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
