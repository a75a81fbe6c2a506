#!/usr/bin/env python3
"""Router scheduling on the real system and in the simulator (issue 7), one command:

1. profiles the real worker while it serves (the same trace at --profile-time-scale, a load
   none of the measured points uses, on-demand) with `strata-worker --step-log`, and fits the
   simulator's step-cost model to that log (`strata simulate --fit-steps`, written to
   OUT/cost-model.json): the steps are timed under serving conditions, the router, the
   detokenizer and the load generator sharing the cores;
2. for each policy and each trace time scale, starts `strata serve` with that
   --admission-policy / --order and a KV cache small enough that memory binds, replays the
   first --num-requests rows of the Azure trace with `strata bench --mode trace` (lengths
   scaled, max_tokens capped, answers forced to the trace's length), and stops it;
3. simulates the same requests with the fitted model (`strata simulate`);
4. prints one Markdown table: real figures (throughput, TTFT/E2E p50/p99, preemptions,
   mean KV utilization) beside the simulator's, and the simulator's error on throughput and
   p50 E2E.

  python3 tools/bench_scheduling.py --out /tmp/sched     # ~25 minutes on 2 cores

Not part of CTest: it takes many minutes and needs a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))

from conftest import BIN, StrataServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TRACE = Path(os.environ.get("STRATA_SHARED_DIR", ROOT.parent / "shared")) / "traces" / \
    "AzureLLMInferenceTrace_conv_2023.csv"


def policy_args(policy: str) -> list[str]:
    admission, _, order = policy.partition("+")
    return ["--admission-policy", admission, "--order", order or "fcfs"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="builtin:llama-110m")
    p.add_argument("--dtype", default="bf16")
    p.add_argument("--kv-cache-mb", default="236", help="small enough that memory binds")
    p.add_argument("--policies", default="on-demand,reserve-max,predicted")
    p.add_argument("--time-scales", default="0.25,0.45,0.8")
    p.add_argument("--num-requests", default="200")
    p.add_argument("--trace-length-scale", default="0.5")
    p.add_argument("--max-input-tokens", default="128")
    p.add_argument("--max-tokens-cap", default="512")
    p.add_argument("--profile-time-scale", default="1.8")
    p.add_argument("--out", default="bench-scheduling")
    p.add_argument("--skip-real", action="store_true", help="reuse OUT/real-*.json from an earlier run")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    strata = str(BIN / "strata")
    shaping = ["--trace", str(TRACE), "--num-requests", a.num_requests, "--trace-length-scale",
               a.trace_length_scale, "--max-input-tokens", a.max_input_tokens, "--max-tokens-cap",
               a.max_tokens_cap]
    worker = ["--dtype", a.dtype, "--kv-cache-mb", a.kv_cache_mb]
    policies = a.policies.split(",")
    scales = a.time_scales.split(",")

    def replay(policy: str, scale: str, json_path: Path, extra_worker=()):
        with StrataServer(model=a.model, router_args=policy_args(policy),
                          worker_args=[*worker, *extra_worker]) as server:
            t0 = time.monotonic()
            subprocess.run([strata, "bench", "--url", server.base_url, "--mode", "trace",
                            "--trace-time-scale", scale, "--max-concurrency", "512",
                            "--output-json", str(json_path), *shaping],
                           check=True, stdout=subprocess.DEVNULL)
            print(f"real {policy} x{scale}: {time.monotonic() - t0:.0f} s", file=sys.stderr)

    steps = out / "profile-steps.csv"
    if not a.skip_real:
        replay("on-demand", a.profile_time_scale, out / "profile-run.json",
               ["--step-log", str(steps.resolve())])
    real: dict[tuple[str, str], dict] = {}
    for policy in policies:
        for scale in scales:
            path = out / f"real-{policy}-{scale}.json"
            if not a.skip_real:
                replay(policy, scale, path)
            real[(policy, scale)] = json.loads(path.read_text())["load_points"][0]

    cost = out / "cost-model.json"
    subprocess.run([strata, "simulate", *shaping, *worker, "--model-shape", a.model, "--fit-steps", str(steps),
                    "--cost-model-out", str(cost), "--trace-time-scale", a.time_scales,
                    "--policy", a.policies, "--output-json", str(out / "sim.json")],
                   check=True, stdout=subprocess.DEVNULL)
    sim = {(pt["policy"], f"{pt['time_scale']:g}"): pt for pt in json.loads((out / "sim.json").read_text())["points"]}
    model = json.loads(cost.read_text())

    print(f"cost model: step_s = {model['a']:.4g} + {model['b']:.3g}·prefill + {model['c']:.3g}·decode_seqs"
          f" + {model['d']:.3g}·context ({model['source']})\n")
    print("| time scale | policy | out tok/s real / sim | TTFT p50 / p99 ms real | E2E p50 / p99 ms real | "
          "E2E p50 sim ms | preemptions real / sim | KV util real / sim | sim error tok/s, E2E p50 |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for scale in scales:
        for policy in policies:
            r, s = real[(policy, scale)], sim[(policy, f"{float(scale):g}")]
            server = r.get("server") or {}
            tput_err = (s["output_tokens_per_s"] - r["output_tokens_per_s"]) / r["output_tokens_per_s"]
            e2e_err = (s["e2e_ms"]["p50"] - r["e2e_ms"]["p50"]) / r["e2e_ms"]["p50"]
            print(f"| {scale} | {policy} | {r['output_tokens_per_s']:.1f} / {s['output_tokens_per_s']:.1f} | "
                  f"{r['ttft_ms']['p50']:.0f} / {r['ttft_ms']['p99']:.0f} | "
                  f"{r['e2e_ms']['p50']:.0f} / {r['e2e_ms']['p99']:.0f} | {s['e2e_ms']['p50']:.0f} | "
                  f"{server.get('preemptions', float('nan')):.0f} / {s['preemptions']} | "
                  f"{100 * server.get('kv_utilization_mean', float('nan')):.0f}% / "
                  f"{100 * s['kv_utilization_mean']:.0f}% | {100 * tput_err:+.1f}%, {100 * e2e_err:+.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
