#!/usr/bin/env python3
"""What the network between hosts costs a TP=2 worker group: tools/bench_parallel's decode
tokens/s and rank 0's all-reduce time per step, for the same two ranks
  - on one host (Open MPI's default transports: shared memory between the ranks),
  - on one host over TCP (`--mca btl tcp,self`, loopback: the TCP stack without a wire),
  - on two hosts: two network namespaces joined by veth pairs and a bridge
    (tools/netns_cluster.py), mpirun started from a third, as on a cluster.
Each row is the median of --repeats runs, the setups taking turns. Needs root (network namespaces).

    sudo tools/bench_multihost.py --model builtin:llama-110m --dtype bf16 --num-seqs 16
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import tempfile
from pathlib import Path

from netns_cluster import NetnsCluster, remove_orphans

ROOT = Path(__file__).resolve().parents[1]
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "passive"}
ROW = re.compile(r"\|\s*([\d.]+)\s*\|\s*([\d.]+) ms\s*\|\s*([\d.]+) ms\s*\|\s*$")


def run_once(prefix: list[str], mpirun_args: list[str], bench_args: list[str], env: dict) -> tuple[float, ...]:
    cmd = prefix + ["mpirun", "-np", "2", "--bind-to", "none", *mpirun_args, *bench_args]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **MPI_ENV, **env}, timeout=600)
    match = next((ROW.search(line) for line in done.stdout.splitlines() if ROW.search(line)), None)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"`{' '.join(cmd)}` failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return tuple(float(g) for g in match.groups())  # tokens/s, step ms, collective ms


def median_row(runs: list[tuple[float, ...]]) -> tuple[float, ...]:
    return tuple(statistics.median(column) for column in zip(*runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench-parallel", default=str(ROOT / "build" / "bin" / "bench_parallel"))
    parser.add_argument("--model", default="builtin:llama-110m")
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--num-seqs", type=int, default=16)
    parser.add_argument("--output-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    bench = [args.bench_parallel, "--tp", "2", "--threads", "1", "--model", args.model, "--dtype", args.dtype,
             "--num-seqs", str(args.num_seqs), "--output-tokens", str(args.output_tokens)]
    remove_orphans("stbench")
    cluster = NetnsCluster(f"stbench{os.getpid()}", 3).up()
    try:
        head, a, b = cluster.hosts
        hostfile = cluster.hostfile(Path(tempfile.mkdtemp()) / "hostfile", [a, b])
        network = ["--mca", "btl_tcp_if_include", cluster.cidr, "--mca", "oob_tcp_if_include", cluster.cidr]
        setups = {
            "one host, shared memory": ([], [], {}),
            "one host, TCP over loopback": ([], ["--mca", "btl", "tcp,self"], {}),
            "two hosts (namespaces), TCP over veth + bridge":
                (cluster.exec_prefix(head), ["--hostfile", str(hostfile), "--mca", "btl", "tcp,self", *network],
                 cluster.mpirun_env()),
        }
        runs = {name: [] for name in setups}
        for _ in range(args.repeats):  # interleaved, so a slow minute of a shared host hits every row
            for name, (prefix, mpirun_args, env) in setups.items():
                runs[name].append(run_once(prefix, mpirun_args, bench, env))
    finally:
        cluster.down()
    rows = {name: median_row(r) for name, r in runs.items()}
    base = rows["one host, shared memory"]
    print(f"{args.model} {args.dtype}, TP=2, 1 thread per rank, {args.num_seqs} sequences, "
          f"median of {args.repeats}\n")
    print("| ranks on | decode tokens/s (min–max) | step | all-reduce per step (min–max) | tokens/s vs one host |")
    print("|---|---|---|---|---|")
    for name, (tps, step_ms, collective_ms) in rows.items():
        spread = list(zip(*runs[name]))
        print(f"| {name} | {tps:.1f} ({min(spread[0]):.0f}–{max(spread[0]):.0f}) | {step_ms:.1f} ms | "
              f"{collective_ms:.1f} ms ({min(spread[2]):.1f}–{max(spread[2]):.1f}) | {tps / base[0]:.2f}× |")


if __name__ == "__main__":
    main()
