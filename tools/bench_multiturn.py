#!/usr/bin/env python3
"""Multi-turn chat benchmark: TTFT of turn k when every turn resends the whole conversation.

Each conversation starts with a shared system prompt; every turn appends a user message of
its own and the model's answer, and the next turn sends all of it again, as chat clients
do. With prefix caching the server prefills only the new message, so TTFT stays flat in k;
without, it grows with the conversation. Prompts are token ids (random, fixed by --seed)
sent to /v1/completions with stream=true; TTFT is the time to the first streamed token.

  python3 tools/bench_multiturn.py --url http://127.0.0.1:8000 --turns 8 --conversations 4
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import httpx


def stream_completion(client: httpx.Client, url: str, model: str, prompt: list[int],
                      max_tokens: int) -> tuple[float, list[int], int]:
    """Sends one streamed completion; returns (TTFT s, generated ids, cached prompt tokens)."""
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
            "stream": True, "stream_options": {"include_usage": True},
            "ignore_eos": True, "return_token_ids": True}
    start = time.perf_counter()
    ttft, ids, cached = None, [], 0
    with client.stream("POST", url + "/v1/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[len("data: "):])
            for choice in chunk.get("choices", []):
                new = choice.get("token_ids") or []
                if new and ttft is None:
                    ttft = time.perf_counter() - start
                ids += new
            usage = chunk.get("usage") or {}
            cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", cached)
    if ttft is None:
        raise RuntimeError("the server streamed no token")
    return ttft, ids, cached


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--model", default="", help="default: the server's first model")
    p.add_argument("--conversations", type=int, default=4)
    p.add_argument("--turns", type=int, default=8)
    p.add_argument("--system-tokens", type=int, default=256)
    p.add_argument("--turn-tokens", type=int, default=64, help="tokens of each user message")
    p.add_argument("--output-tokens", type=int, default=16, help="tokens of each answer")
    p.add_argument("--token-range", default="3,258", help="random prompt ids, inclusive")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", default="", help="write per-turn figures here too")
    a = p.parse_args()
    lo, hi = (int(x) for x in a.token_range.split(","))
    rng = random.Random(a.seed)
    with httpx.Client(timeout=600) as client:
        model = a.model or client.get(a.url + "/v1/models").json()["data"][0]["id"]
        system = [rng.randint(lo, hi) for _ in range(a.system_tokens)]
        histories = [list(system) for _ in range(a.conversations)]
        rows = []
        for turn in range(1, a.turns + 1):
            ttfts, cached = [], []
            for history in histories:
                history += [rng.randint(lo, hi) for _ in range(a.turn_tokens)]
                ttft, answer, hit = stream_completion(client, a.url, model, history, a.output_tokens)
                history += answer
                ttfts.append(ttft)
                cached.append(hit)
            rows.append({"turn": turn, "prompt_tokens": len(histories[0]) - a.output_tokens,
                         "ttft_ms_p50": 1000 * statistics.median(ttfts),
                         "ttft_ms_max": 1000 * max(ttfts),
                         "cached_tokens_p50": statistics.median(cached), "cached_tokens": cached})
    print("| turn | prompt tokens | TTFT p50 ms | TTFT max ms | cached tokens p50 |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['turn']} | {r['prompt_tokens']} | {r['ttft_ms_p50']:.1f} | {r['ttft_ms_max']:.1f} "
              f"| {r['cached_tokens_p50']:.0f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"settings": vars(a), "model": model, "turns": rows}, f, indent=1)


if __name__ == "__main__":
    main()
