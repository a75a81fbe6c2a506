"""Worker groups that die, and workers that should not be served, with real processes:
`kill -9` of a serving worker group (the router sees the connection close at once, fails
what the group held with an error naming it, and `strata serve` restarts the group), two
groups of which one dies (the other serves throughout), and a second worker with a live
group's id (refused; the real group keeps serving)."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conftest import (AIDREAMS, BIN, StrataServer, free_port, kill_group, metric_value, require_file, spawn,
                      wait_for)

C = "/v1/completions"
STREAMS = 16


def children(pid: int, name: str) -> list[int]:
    """Pids of the processes named `name` whose parent is `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        ppid = int(text[text.rindex(")") + 2:].split()[1])
        if ppid == pid and comm == name:
            found.append(int(stat.parent.name))
    return found


def stream_events(base: str, started: threading.Semaphore) -> tuple[int, list[dict], bool]:
    body = {"prompt": "Once upon a time", "max_tokens": 1900, "ignore_eos": True, "stream": True}
    events, done = [], False
    with httpx.Client(timeout=60) as client, client.stream("POST", base + C, json=body) as r:
        pending = b""
        for chunk in r.iter_bytes():
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in (raw.decode() for raw in lines):
                if line == "data: [DONE]":
                    done = True
                elif line.startswith("data: "):
                    events.append(json.loads(line[len("data: "):]))
                    if len(events) == 1:
                        started.release()
        return r.status_code, events, done


def wait_ready_status(base: str, want: int, within_s: float) -> float:
    """Seconds until /ready answers `want`; fails past `within_s`."""
    start = time.monotonic()
    while httpx.get(base + "/ready", timeout=5).status_code != want:
        assert time.monotonic() - start < within_s, f"/ready not {want} within {within_s} s"
        time.sleep(0.01)
    return time.monotonic() - start


def a_rank_of(serve_pid: int, tp: int) -> int:
    """The worker process of a one-rank group; for an mpirun group, its last rank."""
    if tp == 1:
        (worker,) = children(serve_pid, "strata-worker")
        return worker
    (mpirun,) = children(serve_pid, "mpirun")
    ranks = sorted(children(mpirun, "strata-worker"))
    assert len(ranks) == tp, ranks
    return ranks[-1]


# A one-process group's connection closes with its process; every other rank of an mpirun
# group has a connection of its own (the killed one is the last rank, not the driver, which
# stays connected until mpirun ends the job a second or two later).
@pytest.mark.parametrize("tp,not_ready_within_s", [(1, 1.0), (2, 1.0)])
def test_serve_restarts_a_killed_worker_group_and_its_streams_end_naming_it(tp, not_ready_within_s):
    port = free_port()
    # One sequence at a time: when the first stream has started, the others wait in the group.
    # Sixteen streams of 1900 tokens are many seconds of work even on an idle machine, so a
    # loaded CI host that is slow to reach the kill still finds streams running.
    serve = spawn([str(BIN / "strata"), "serve", "--model", "builtin:tiny", "--port", str(port), "--tp", str(tp),
                   "--threads", "1", "--max-num-seqs", "1"], f"supervise-{port}")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(base + "/ready", timeout=1).status_code == 200, 60, "strata serve to be ready")
        worker = a_rank_of(serve.pid, tp)
        started = threading.Semaphore(0)
        with ThreadPoolExecutor(max_workers=STREAMS) as pool:
            futures = [pool.submit(stream_events, base, started) for _ in range(STREAMS)]
            assert started.acquire(timeout=60)
            # Counted when submitted: STREAMS × (BOS + 16 bytes of "Once upon a time").
            wait_for(lambda: metric_value(httpx.get(base + "/metrics", timeout=5).text,
                                          "strata_prompt_tokens_total") == STREAMS * 17, 30, "all streams to arrive")
            os.kill(worker, signal.SIGKILL)
            not_ready_after = wait_ready_status(base, 503, within_s=not_ready_within_s)
            results = [f.result(timeout=60) for f in futures]
        back_after = wait_ready_status(base, 200, within_s=30.0)
        r = httpx.post(base + C, json={"prompt": "a", "max_tokens": 4}, timeout=30)
        assert r.status_code == 200, r.text
        assert a_rank_of(serve.pid, tp) != worker  # a new process
    finally:
        kill_group(serve)
    print(f"/ready 503 after {not_ready_after:.3f} s, back after {back_after:.1f} s")
    failed = 0
    for status, events, done in results:
        assert status == 200 and done, "a stream was cut instead of ended"
        errors = [e["error"]["message"] for e in events if "error" in e]
        if errors:
            failed += 1
            assert len(errors) == 1 and "worker group g0 failed" in errors[0], errors
        else:  # it had finished before the group went down
            assert events[-1]["choices"][0]["finish_reason"] == "length", events[-1]
    assert failed > 0, "no stream was running when the group was killed"


def test_with_two_groups_the_other_serves_while_one_dies():
    with StrataServer("builtin:tiny") as server:
        g1 = spawn([str(BIN / "strata-worker"), "--model", "builtin:tiny", "--group-id", "g1",
                    "--router", f"ipc://{server.ipc_path}", "--threads", "1"], "worker-g1")
        try:
            wait_for(lambda: sum(g["alive"] and g["ready"] for g in
                                 httpx.get(server.url("/health"), timeout=5).json()["groups"]) == 2,
                     60, "two ready groups")
            stop = threading.Event()
            outcomes: list[tuple[float, int, str]] = []
            not_ready: list[int] = []

            def client():
                with httpx.Client(timeout=30) as c:
                    while not stop.is_set():
                        r = c.post(server.url(C), json={"prompt": "b", "max_tokens": 300, "ignore_eos": True})
                        outcomes.append((time.monotonic(), r.status_code,
                                         "" if r.status_code == 200 else r.json()["error"]["message"]))

            def probe():
                while not stop.is_set():
                    if (status := httpx.get(server.url("/ready"), timeout=5).status_code) != 200:
                        not_ready.append(status)
                    time.sleep(0.02)

            with ThreadPoolExecutor(max_workers=9) as pool:
                running = [pool.submit(client) for _ in range(8)] + [pool.submit(probe)]
                time.sleep(1.5)
                os.killpg(g1.pid, signal.SIGKILL)
                killed_at = time.monotonic()
                # The surviving group goes on serving: wait for 9 of its answers, however slow
                # the host (a sanitizer build, a loaded CI machine) makes them.
                def served_after_the_kill() -> int:
                    return sum(1 for t, status, _ in outcomes if status == 200 and t > killed_at + 0.5)

                try:
                    wait_for(lambda: served_after_the_kill() > 8, 60, "9 requests served after the kill")
                finally:
                    stop.set()
                for f in running:
                    f.result()
        finally:
            kill_group(g1)
    failures = [(t, message) for t, status, message in outcomes if status != 200]
    assert all("worker group g1 failed" in m for _, m in failures), failures
    assert all(t < killed_at + 1.0 for t, _ in failures), "a request failed well after the kill"
    assert not not_ready, f"/ready said {not_ready} while g0 served"


def test_a_second_worker_with_a_live_groups_id_is_refused_and_the_real_group_serves():
    twin_model = str(require_file(AIDREAMS))
    with StrataServer("builtin:tiny") as server:
        twin = spawn([str(BIN / "strata-worker"), "--model", twin_model, "--group-id", "g0",
                      "--router", f"ipc://{server.ipc_path}", "--threads", "1"], "worker-twin")
        try:
            time.sleep(3)  # it has connected and sent its Hello
            assert twin.poll() is None
            groups = httpx.get(server.url("/health"), timeout=5).json()["groups"]
            assert [g["id"] for g in groups] == ["g0"], groups
            assert httpx.get(server.url("/v1/models"), timeout=5).json()["data"][0]["id"] == "builtin:tiny"
            for _ in range(5):
                r = httpx.post(server.url(C), json={"prompt": "secret", "max_tokens": 4}, timeout=30)
                assert r.status_code == 200, r.text
        finally:
            kill_group(twin)
        # The twin going away leaves the real group as it was.
        time.sleep(1)
        assert httpx.get(server.url("/ready"), timeout=5).status_code == 200
        r = httpx.post(server.url(C), json={"prompt": "a", "max_tokens": 4}, timeout=30)
        assert r.status_code == 200, r.text
