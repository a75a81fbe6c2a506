"""Worker groups of several mpirun ranks, end to end.

- `strata serve --tp 2` answers the official openai client exactly as one rank does.
- Killing one rank of a running group: the router reports the group dead within its
  heartbeat timeout, the group's in-flight requests end with a clear retriable error, a
  second group keeps serving, and nothing hangs (mpirun exits).
"""
from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from conftest import AIDREAMS, BIN, free_port, kill_group, require_file, spawn, strata_generate, wait_for

def groups(base_url):
    return {g["id"]: g for g in httpx.get(base_url + "/health", timeout=2).json()["groups"]}


def test_serve_with_tp2_answers_the_openai_client_like_one_rank():
    model = str(require_file(AIDREAMS))
    port = free_port()
    serve = spawn([str(BIN / "strata"), "serve", "--model", model, "--tp", "2", "--threads", "1",
                   "--port", str(port)], "serve-tp2")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(base + "/ready", timeout=1).status_code == 200, 60, "/ready")
        assert groups(base)["g0"]["alive"]
        client = OpenAI(base_url=base + "/v1", api_key="unused")
        prompts = ["Echoes of", "A gentle hum", "Contrast"]
        for prompt in prompts:
            got = client.completions.create(model="aidreams260K", prompt=prompt, max_tokens=40, temperature=0)
            want = strata_generate(model, prompt, 40)
            assert got.choices[0].text == want, prompt
        # Streaming chat works through the group too.
        stream = client.chat.completions.create(model="aidreams260K", max_tokens=8, stream=True,
                                                messages=[{"role": "user", "content": "Echoes"}])
        assert sum(1 for _ in stream) > 1
    finally:
        kill_group(serve)


def parent_pid(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[1])


def rank_pids(mpirun_pid):
    """World rank → pid of the strata-worker processes descending from mpirun."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid, ancestor = int(entry.name), int(entry.name)
        while ancestor not in (None, 0, 1, mpirun_pid):
            ancestor = parent_pid(ancestor)
        if ancestor != mpirun_pid:
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"strata-worker" not in cmdline:
            continue
        for var in environ:
            if var.startswith(b"OMPI_COMM_WORLD_RANK="):
                out[int(var.split(b"=")[1])] = pid
    return out


def test_killing_one_rank_fails_its_group_and_the_other_group_keeps_serving():
    heartbeat_timeout_ms = 1500
    port = free_port()
    endpoint = f"ipc://{tempfile.gettempdir()}/strata-e2e-kill-{uuid.uuid4().hex[:8]}.sock"
    base = f"http://127.0.0.1:{port}"
    router = spawn([str(BIN / "strata-router"), "--port", str(port), "--zmq-endpoint", endpoint,
                    "--heartbeat-timeout-ms", str(heartbeat_timeout_ms)], "router-kill")
    group0 = spawn(["mpirun", "-np", "2", "--oversubscribe", "--bind-to", "none", "--allow-run-as-root",
                    str(BIN / "strata-worker"), "--tp", "2", "--group-id", "g0", "--router", endpoint,
                    "--threads", "1", "--kv-cache-mb", "64"], "g0")
    group1 = spawn([str(BIN / "strata-worker"), "--group-id", "g1", "--router", endpoint,
                    "--threads", "1", "--kv-cache-mb", "64"], "g1")
    try:
        wait_for(lambda: len([g for g in groups(base).values() if g["alive"] and g["ready"]]) == 2, 60,
                 "both groups ready")
        # Long requests on both groups (placement alternates by in-flight count).
        results = []

        def request():
            r = httpx.post(base + "/v1/completions", timeout=60,
                           json={"prompt": "x", "max_tokens": 1500, "ignore_eos": True})
            results.append((r.status_code, r.json()))

        threads = [threading.Thread(target=request) for _ in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: all(g["ms_since_last_message"] < 1000 for g in groups(base).values()), 10, "work")
        time.sleep(0.5)
        pids = rank_pids(group0.pid)
        assert set(pids) == {0, 1}, pids
        killed_at = time.monotonic()
        os.kill(pids[1], signal.SIGKILL)

        wait_for(lambda: not groups(base)["g0"]["alive"], heartbeat_timeout_ms / 1000 + 3,
                 "the router to mark g0 dead")
        assert time.monotonic() - killed_at < heartbeat_timeout_ms / 1000 + 3
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "a request hung"
        failed = [body for status, body in results if status != 200]
        ok = [body for status, body in results if status == 200]
        assert failed, "requests on the killed group should fail"
        for body in failed:
            assert "retry" in body["error"]["message"], body
        assert ok, "requests on the surviving group should finish"
        # The surviving group keeps serving; the dead group's mpirun has exited.
        for _ in range(3):
            r = httpx.post(base + "/v1/completions", timeout=30, json={"prompt": "hi", "max_tokens": 4})
            assert r.status_code == 200, r.text
        group0.wait(timeout=20)
        assert group0.returncode != 0
    finally:
        for p in (group0, group1, router):
            kill_group(p)
