#!/usr/bin/env python3
"""Router overhead: output tokens/s of one workload served over HTTP + ZeroMQ (strata-router
and strata-worker, streaming clients) against the in-process engine (bench_engine --mode
decode) with the same engine settings. Prints both figures and the loss in percent.

The workload: --num-seqs sequences of --prompt-tokens random ids, each generating exactly
--output-tokens tokens, all arriving at once. Use a model large enough that the engine,
not HTTP or the Python client, is the bottleneck, e.g.:

  python3 tools/bench_http_overhead.py --model builtin:llama-110m --dtype bf16 \\
      --num-seqs 16 --prompt-tokens 128 --output-tokens 128

Not part of CTest (it takes minutes); the e2e test test_load.py runs a small version.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))

from conftest import BIN, StrataServer  # noqa: E402
from load_client import (bench_engine_decode, engine_worker_args, loss_percent,  # noqa: E402
                         run_streaming_load)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="builtin:llama-110m")
    p.add_argument("--dtype", default="bf16")
    p.add_argument("--num-seqs", type=int, default=16)
    p.add_argument("--prompt-tokens", type=int, default=128)
    p.add_argument("--output-tokens", type=int, default=128)
    p.add_argument("--repeats", type=int, default=2, help="runs of each side; the best counts")
    p.add_argument("--vocab-size", type=int, default=0, help="prompt ids below this (default: from /tokenize)")
    args = p.parse_args()

    engine = []
    for _ in range(args.repeats):
        engine.append(bench_engine_decode(BIN, model=args.model, dtype=args.dtype, num_seqs=args.num_seqs,
                                          prompt_tokens=args.prompt_tokens,
                                          output_tokens=args.output_tokens)["output_tokens_per_s"])
        print(f"engine: {engine[-1]:.1f} output tokens/s", flush=True)

    http = []
    worker_args = engine_worker_args(args.num_seqs, args.prompt_tokens, args.dtype)
    # A long prefill step can keep the worker from sending heartbeats for seconds on few
    # cores; the router must not mark it dead meanwhile.
    router_args = ["--http-threads", str(args.num_seqs + 16), "--heartbeat-timeout-ms", "120000"]
    with StrataServer(args.model, router_args=router_args,
                      worker_args=worker_args) as server:
        vocab = args.vocab_size or min(32000, 512)
        for i in range(args.repeats):
            r = run_streaming_load(server.base_url, num_requests=args.num_seqs, concurrency=args.num_seqs,
                                   prompt_tokens=args.prompt_tokens, output_tokens=args.output_tokens,
                                   vocab_size=vocab, seed=i)
            if r.failures:
                print(f"HTTP run failed: {r.failures[:3]}", file=sys.stderr)
                return 1
            http.append(r.output_tokens_per_s)
            print(f"http:   {http[-1]:.1f} output tokens/s", flush=True)

    best_engine, best_http = max(engine), max(http)
    print(f"\n| model | dtype | seqs | prompt+output | engine tok/s | HTTP tok/s | loss |")
    print(f"|---|---|---|---|---|---|---|")
    print(f"| {args.model} | {args.dtype} | {args.num_seqs} | {args.prompt_tokens}+{args.output_tokens} | "
          f"{best_engine:.1f} | {best_http:.1f} | {loss_percent(best_http, best_engine):.1f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
