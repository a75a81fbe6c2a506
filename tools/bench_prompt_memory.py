#!/usr/bin/env python3
"""Router memory under large prompts: N clients at once each post one prompt of B bytes
(ordinary English, far past any small context) to /v1/completions, and the router's peak
and current RSS (VmHWM, VmRSS from /proc) are printed before and after, with the status
codes. The router must run on this machine (its pid is read from /proc).

  python3 tools/bench_prompt_memory.py http://127.0.0.1:8000 ROUTER_PID [--clients 64] [--bytes 3.9e6] [--rounds 2]
"""
from __future__ import annotations

import argparse
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

WORDS = "Once upon a time there was a little girl named Lily. She loved to play outside. "


def rss(pid: int) -> str:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return f"peak {int(fields['VmHWM'].split()[0]) / 1024:.0f} MB, now {int(fields['VmRSS'].split()[0]) / 1024:.0f} MB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url")
    ap.add_argument("pid", type=int)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--bytes", type=float, default=3.9e6)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    size = int(a.bytes)
    prompt = (WORDS * (size // len(WORDS) + 1))[:size]
    print(f"router before: {rss(a.pid)}")
    for round_ in range(a.rounds):
        start = time.monotonic()
        with ThreadPoolExecutor(a.clients) as pool:
            codes = Counter(pool.map(lambda _: httpx.post(a.url + "/v1/completions", timeout=300,
                                                          json={"prompt": prompt, "max_tokens": 4}).status_code,
                                     range(a.clients)))
        print(f"round {round_ + 1}: {a.clients} x {size / 1e6:.1f} MB prompts in {time.monotonic() - start:.1f} s, "
              f"statuses {dict(codes)}; router {rss(a.pid)}")


if __name__ == "__main__":
    main()
