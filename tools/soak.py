#!/usr/bin/env python3
"""Soak test: a router with two worker groups under mixed traffic for a long time, one group
killed and restarted every few minutes. Fails on any request failure the kill does not
explain, or on growth of RSS / open fds / KV blocks in use past a slope.

Traffic (several client threads): plain and streaming completions and chats, streams the
client drops half-way (cancels), n > 1, long prompts, and bad requests that must get a 4xx.
A request may fail only with a retriable error (5xx / a cut stream) while a group is down.
Each minute it samples the RSS and open fds of the processes that live throughout (the
router and group g0) and the KV blocks in use. It fails when, past the first sample
(warm-up), the mean of the last third of the samples exceeds the mean of the first third
by more than an allowance (a leak grows without bound; noise does not), and when the KV
blocks in use do not return to 0 within 15 s of the traffic stopping (a block leak).

    python3 tools/soak.py --minutes 30 [--model builtin:tiny] [--kill-every-s 180]
tools/soak.sh is the same with the defaults CI uses for its short run.
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

BIN = Path(os.environ.get("STRATA_BINARY_DIR", Path(__file__).resolve().parents[1] / "build")) / "bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """strata-router and two strata-worker groups over one ipc:// endpoint."""

    def __init__(self, model: str, kv_mb: int):
        self.model, self.kv_mb = model, kv_mb
        self.port = free_port()
        self.endpoint = f"ipc://{tempfile.gettempdir()}/strata-soak-{uuid.uuid4().hex[:8]}.sock"
        self.base = f"http://127.0.0.1:{self.port}"
        self.logs = Path(tempfile.mkdtemp(prefix="strata-soak-"))
        self.procs: dict[str, subprocess.Popen] = {}
        self.down_since: float | None = None  # while a group is being restarted
        self.last_restart_done = float("-inf")

    def spawn(self, name: str, argv: list[str]):
        log = open(self.logs / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    def start_group(self, group: str):
        self.spawn(group, [str(BIN / "strata-worker"), "--model", self.model, "--group-id", group,
                           "--router", self.endpoint, "--threads", "1", "--kv-cache-mb", str(self.kv_mb)])

    def start(self):
        self.spawn("router", [str(BIN / "strata-router"), "--port", str(self.port), "--model", self.model,
                              "--zmq-endpoint", self.endpoint])
        for g in ("g0", "g1"):
            self.start_group(g)
        self.wait_ready(2, 120)

    def groups(self) -> dict:
        return {g["id"]: g for g in httpx.get(self.base + "/health", timeout=5).json()["groups"]}

    def wait_ready(self, count: int, timeout_s: float):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if sum(1 for g in self.groups().values() if g["alive"] and g["ready"]) >= count:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{count} groups not ready within {timeout_s} s; logs in {self.logs}")

    def restart_g1(self):
        self.down_since = time.monotonic()
        os.killpg(self.procs["g1"].pid, signal.SIGKILL)
        self.procs["g1"].wait()
        self.start_group("g1")
        self.wait_ready(2, 120)
        self.down_since = None
        self.last_restart_done = time.monotonic()

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def proc_sample(pid: int) -> tuple[float, int]:
    """(RSS in MiB, open fds) of one process."""
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    return rss_kb / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def kv_blocks_used(base: str) -> float:
    total = 0.0
    for line in httpx.get(base + "/metrics", timeout=5).text.splitlines():
        if line.startswith("strata_kv_blocks_used"):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Traffic:
    """Client threads sending mixed requests; counts outcomes."""

    def __init__(self, cluster: Cluster, seed: int):
        self.cluster, self.rng = cluster, random.Random(seed)
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.unexplained: list[str] = []
        self.stop = threading.Event()

    def count(self, what: str):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    def explained(self) -> bool:
        """A failure is explained while g1 is down or within 10 s after it came back."""
        c = self.cluster
        return c.down_since is not None or time.monotonic() - c.last_restart_done < 10

    def fail(self, what: str):
        if self.explained():
            self.count("failed during a kill")
        else:
            with self.lock:
                self.unexplained.append(what)

    def one(self, client: httpx.Client, kind: str):
        prompt = "Once upon a time " * (self.rng.choice([1, 1, 1, 40]))  # some long prompts
        body = {"prompt": prompt, "max_tokens": self.rng.randint(1, 48), "temperature": 0.8}
        route = "/v1/completions"
        if kind.startswith("chat"):
            route = "/v1/chat/completions"
            body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": body["max_tokens"]}
        if kind == "n2":
            body["n"] = 2
        if kind == "bad":
            body = {"prompt": "x", "max_tokens": -5}
            r = client.post(self.cluster.base + route, json=body)
            return self.count("bad → 4xx") if 400 <= r.status_code < 500 else self.fail(f"bad got {r.status_code}")
        if kind in ("stream", "chat_stream", "cancel"):
            body["stream"] = True
            with client.stream("POST", self.cluster.base + route, json=body) as r:
                if r.status_code != 200:
                    return self.fail(f"{kind} status {r.status_code}")
                done = False
                for i, line in enumerate(r.iter_lines()):
                    if kind == "cancel" and i == 2:
                        return self.count("cancelled")
                    done = done or line == "data: [DONE]"
                return self.count(kind) if done else self.fail(f"{kind} ended without [DONE]")
        r = client.post(self.cluster.base + route, json=body)
        return self.count(kind) if r.status_code == 200 else self.fail(f"{kind} status {r.status_code}: {r.text[:200]}")

    def run(self):
        kinds = ["plain", "plain", "chat", "stream", "chat_stream", "cancel", "n2", "bad"]
        with httpx.Client(timeout=60) as client:
            while not self.stop.is_set():
                kind = self.rng.choice(kinds)
                try:
                    self.one(client, kind)
                except httpx.HTTPError as e:
                    self.fail(f"{kind}: {type(e).__name__} {e}")


def slope_per_hour(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), in value units per hour."""
    n = len(samples)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in samples) / n
    mv = sum(v for _, v in samples) / n
    den = sum((t - mt) ** 2 for t, _ in samples)
    return 0.0 if den == 0 else sum((t - mt) * (v - mv) for t, v in samples) / den * 3600


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--model", default="builtin:tiny")
    ap.add_argument("--kill-every-s", type=float, default=180)
    ap.add_argument("--sample-every-s", type=float, default=60)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--kv-cache-mb", type=int, default=64)
    ap.add_argument("--rss-growth-mib", type=float, default=32, help="allowed per process")
    ap.add_argument("--fd-growth", type=float, default=4, help="allowed per process")
    a = ap.parse_args()
    cluster = Cluster(a.model, a.kv_cache_mb)
    cluster.start()
    traffic = [Traffic(cluster, seed) for seed in range(a.clients)]
    threads = [threading.Thread(target=t.run, daemon=True) for t in traffic]
    for t in threads:
        t.start()
    samples: dict[str, list[tuple[float, float]]] = {}
    start = time.monotonic()
    next_kill, next_sample = start + a.kill_every_s, start + a.sample_every_s
    try:
        while time.monotonic() - start < a.minutes * 60:
            now = time.monotonic()
            if now >= next_kill:
                print(f"[{now - start:7.1f} s] killing and restarting group g1", flush=True)
                cluster.restart_g1()
                next_kill = time.monotonic() + a.kill_every_s
            if now >= next_sample:
                # After a restart g1 is a new process: only the router and g0 run the whole time.
                for name in ("router", "g0"):
                    rss, fds = proc_sample(cluster.procs[name].pid)
                    samples.setdefault(f"{name} RSS MiB", []).append((now - start, rss))
                    samples.setdefault(f"{name} fds", []).append((now - start, fds))
                samples.setdefault("KV blocks used", []).append((now - start, kv_blocks_used(cluster.base)))
                print(f"[{now - start:7.1f} s] " + ", ".join(f"{k} {v[-1][1]:.0f}" for k, v in samples.items()), flush=True)
                next_sample += a.sample_every_s
            time.sleep(0.2)
        for t in traffic:
            t.stop.set()
        for t in threads:
            t.join(timeout=70)
        idle_kv = wait_kv_idle(cluster.base, 15)
    finally:
        for t in traffic:
            t.stop.set()
        cluster.stop()
    return report(a, traffic, samples, idle_kv)


def wait_kv_idle(base: str, timeout_s: float) -> float:
    """KV blocks in use once traffic has stopped: 0 unless blocks leaked."""
    deadline = time.monotonic() + timeout_s
    used = kv_blocks_used(base)
    while used > 0 and time.monotonic() < deadline:
        time.sleep(0.5)
        used = kv_blocks_used(base)
    return used


def third_means(series: list[tuple[float, float]]) -> tuple[float, float]:
    """Means of the first and last thirds of the series."""
    n = max(1, len(series) // 3)
    return (sum(v for _, v in series[:n]) / n, sum(v for _, v in series[-n:]) / n)


def report(a, traffic: list[Traffic], samples: dict, idle_kv: float) -> int:
    counts: dict[str, int] = {}
    unexplained = [u for t in traffic for u in t.unexplained]
    for t in traffic:
        for k, v in t.counts.items():
            counts[k] = counts.get(k, 0) + v
    print("requests: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    failed = bool(unexplained)
    for u in unexplained[:10]:
        print(f"UNEXPLAINED FAILURE: {u}")
    allowances = {"RSS MiB": a.rss_growth_mib, "fds": a.fd_growth}
    for name, series in samples.items():
        steady = series[1:] if len(series) > 3 else series  # past warm-up
        first, last = third_means(steady)
        line = (f"{name}: first {series[0][1]:.0f}, last {series[-1][1]:.0f}, mean of first third "
                f"{first:.1f}, of last third {last:.1f}, slope {slope_per_hour(steady):+.1f}/h")
        allowance = next((v for k, v in allowances.items() if name.endswith(k)), None)
        if allowance is not None:
            grows = last - first > allowance
            failed |= grows
            line += f" (allowed growth {allowance:g}) " + ("GROWS" if grows else "ok")
        print(line)
    failed |= idle_kv > 0
    print(f"KV blocks in use after the traffic stopped: {idle_kv:.0f} " + ("LEAK" if idle_kv > 0 else "ok"))
    print("soak: FAILED" if failed else "soak: passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
