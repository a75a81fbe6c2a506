"""Request bodies and the router's memory, with real processes: 64 clients at once each
posting a 3.9 MB prompt far past the context get a context-length error, and the router's
peak RSS stays under 200 MB (before: 687 MB, all tokenized before the length check);
bodies beyond --max-body-bytes-in-flight wait for room and, when none comes within the read
timeout, get 503 with Retry-After, unread."""
from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from conftest import StrataServer

PROMPT_BYTES = 3_900_000
WORDS = "Once upon a time there was a little girl named Lily. She loved to play outside. "


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_64_hopeless_megabyte_prompts_keep_the_router_under_200_mb():
    prompt = (WORDS * (PROMPT_BYTES // len(WORDS) + 1))[:PROMPT_BYTES]
    with StrataServer("builtin:tiny") as server:
        router = server.procs[0]

        def post(_):
            return httpx.post(server.url("/v1/completions"), json={"prompt": prompt, "max_tokens": 4}, timeout=120)

        with ThreadPoolExecutor(64) as pool:
            replies = list(pool.map(post, range(64)))
        for r in replies:
            assert r.status_code == 400, r.text[:500]
            error = r.json()["error"]
            assert error["code"] == "context_length_exceeded" and "at least" in error["message"], error
        peak = peak_rss_mb(router.pid)
        assert peak < 200, f"router peak RSS {peak:.0f} MB"
        ok = httpx.post(server.url("/v1/completions"), json={"prompt": "Once upon a time", "max_tokens": 4}, timeout=30)
        assert ok.status_code == 200, ok.text
        print(f"router peak RSS after 64 x {PROMPT_BYTES / 1e6:.1f} MB prompts: {peak:.0f} MB")


def test_bodies_beyond_the_budget_wait_for_room_then_get_503():
    budget, read_timeout_s = 1 << 20, 3
    with StrataServer("builtin:tiny", router_args=["--max-body-bytes-in-flight", str(budget),
                                                   "--read-timeout-s", str(read_timeout_s)]) as server:
        # A slow upload declaring 900 kB holds that much of the budget while it dribbles in.
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.sendall(b"POST /tokenize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 900000\r\n\r\n{")
        stop = threading.Event()

        def dribble():
            while not stop.wait(0.5):
                slow.sendall(b" ")

        dribbler = threading.Thread(target=dribble)
        dribbler.start()
        try:
            time.sleep(0.5)
            small = httpx.post(server.url("/tokenize"), json={"prompt": "Once upon a time"}, timeout=10)
            assert small.status_code == 200, small.text  # what fits beside it goes at once
            start = time.monotonic()
            big = httpx.post(server.url("/tokenize"), json={"prompt": "x " * 100_000}, timeout=30)
            waited = time.monotonic() - start
            assert big.status_code == 503, big.text[:500]
            assert big.headers.get("Retry-After") == "1"
            assert big.json()["error"]["code"] == "service_unavailable"
            assert "--max-body-bytes-in-flight" in big.json()["error"]["message"]
            assert read_timeout_s - 0.5 < waited < read_timeout_s + 5, waited
        finally:
            stop.set()
            dribbler.join()
            slow.close()  # its reservation goes back once its read fails
        time.sleep(0.5)
        again = httpx.post(server.url("/tokenize"), json={"prompt": "x " * 100_000}, timeout=30)
        assert again.status_code == 200, again.text[:500]
