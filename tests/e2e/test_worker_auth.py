"""Worker transport authentication with real processes: a router with a transport key
(`strata keygen`, CURVE) admits only strata-workers holding the same key file, over TCP and
ipc; others are refused at the handshake and exit saying why, while the real group keeps
serving. A router reachable from other machines will not start without a key, and
`strata serve` always runs its router and worker with a key of its own."""
from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import httpx
import pytest

from conftest import BIN, StrataServer, free_port, kill_group, metric_value
from test_private_transport import descendants, serve

REFUSED_BY_ROUTER = "refused a connection"
REFUSED_WORKER = "refused the connection's handshake"


def keygen(directory: Path, name: str) -> Path:
    path = directory / name
    out = subprocess.run([str(BIN / "strata"), "keygen", str(path)], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    return path


def completion_text(base_url: str) -> str:
    r = httpx.post(base_url + "/v1/completions", json={"prompt": "Once upon a time", "max_tokens": 4}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]["text"]


def intruder(endpoint: str, group_id: str, *flags: str) -> subprocess.CompletedProcess:
    """A real strata-worker pointed at the router; returns once it has exited."""
    return subprocess.run([str(BIN / "strata-worker"), "--model", "builtin:tiny", "--router", endpoint,
                           "--group-id", group_id, *flags], capture_output=True, text=True, timeout=30)


def test_keygen_writes_an_owner_only_key_and_never_overwrites_one(tmp_path):
    key = keygen(tmp_path, "k")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    text = key.read_text()
    assert text.count("public-key = \"") == 1 and text.count("secret-key = \"") == 1, text
    again = subprocess.run([str(BIN / "strata"), "keygen", str(key)], capture_output=True, text=True, timeout=10)
    assert again.returncode == 2 and "exists" in again.stderr, again.stderr
    assert key.read_text() == text
    assert keygen(tmp_path, "k2").read_text() != text, "two keys came out the same"


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_only_workers_holding_the_routers_key_register(tmp_path, transport):
    key, other = keygen(tmp_path, "router.key"), keygen(tmp_path, "other.key")
    # Off loopback on TCP: the case a key is required for.
    endpoint = f"tcp://0.0.0.0:{free_port()}" if transport == "tcp" else f"ipc://{tmp_path}/router.sock"
    keyed = ["--transport-key-file", str(key)]
    with StrataServer(router_args=keyed, worker_args=keyed, endpoint=endpoint) as server:
        completion_text(server.base_url)
        for group_id, flags in (("no-key", ()), ("other-key", ("--transport-key-file", str(other)))):
            out = intruder(endpoint, group_id, *flags)
            assert out.returncode == 2, out.stderr[-2000:]
            assert REFUSED_WORKER in out.stderr and "--transport-key-file" in out.stderr, out.stderr[-2000:]
            assert metric_value(server.metrics(), "strata_kv_blocks_total", f'group="{group_id}"') is None
        assert REFUSED_BY_ROUTER in server.log_tail(100000)
        assert metric_value(server.metrics(), "strata_kv_blocks_total", 'group="g0"') is not None
        completion_text(server.base_url)  # the real group served throughout
        assert server.alive()


def test_a_router_reachable_from_other_machines_will_not_start_without_a_key():
    out = subprocess.run([str(BIN / "strata-router"), "--port", str(free_port()), "--model", "builtin:tiny",
                          "--zmq-endpoint", f"tcp://0.0.0.0:{free_port()}"], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "strata keygen" in out.stderr and "--transport-key-file" in out.stderr, out.stderr


def test_a_bad_key_file_stops_the_worker_before_it_loads_the_model(tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text('secret-key = "too short"\n')
    out = intruder("ipc:///nonexistent/router.sock", "g0", "--transport-key-file", str(bad))
    assert out.returncode == 2
    assert f"{bad} line 1: `secret-key`" in out.stderr, out.stderr[-2000:]
    assert "warmed up" not in out.stderr


def test_strata_serve_admits_no_worker_without_its_own_key():
    p = serve()
    try:
        (router,) = [c for c in descendants(p.pid) if Path(f"/proc/{c}/comm").read_text().strip() == "strata-router"]
        argv = Path(f"/proc/{router}/cmdline").read_bytes().split(b"\0")
        endpoint = argv[argv.index(b"--zmq-endpoint") + 1].decode()
        port = argv[argv.index(b"--port") + 1].decode()
        # Even a process that can enter the private directory (the same user) is refused.
        out = intruder(endpoint, "intruder")
        assert out.returncode == 2 and REFUSED_WORKER in out.stderr, out.stderr[-2000:]
        completion_text(f"http://127.0.0.1:{port}")
        assert p.poll() is None
    finally:
        kill_group(p)
