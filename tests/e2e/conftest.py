"""Fixtures for strata's end-to-end tests: real strata-router and strata-worker processes.

Each server is a router on 127.0.0.1 with a free port and a worker group connected over a
unique ipc:// path. start() waits for /ready (with a timeout) and the fixtures always kill
both processes at teardown, also when a test or the start itself fails; their logs go to
temporary files whose tail is shown when start fails.

Environment: STRATA_BINARY_DIR (build dir, default <source>/build), STRATA_SOURCE_DIR,
STRATA_SHARED_DIR (default <source>/../shared), CI=true turns "shared model missing" from
a skip into a failure.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest

SOURCE_DIR = Path(os.environ.get("STRATA_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BINARY_DIR = Path(os.environ.get("STRATA_BINARY_DIR", SOURCE_DIR / "build"))
SHARED_DIR = Path(os.environ.get("STRATA_SHARED_DIR", SOURCE_DIR.parent / "shared"))
BIN = BINARY_DIR / "bin"

AIDREAMS = SHARED_DIR / "models" / "aidreams260K" / "aidreams260K.bin"
REFERENCE_GREEDY = SHARED_DIR / "models" / "reference-greedy.json"

READY_TIMEOUT_S = 30.0


def skip_or_fail(message: str) -> None:
    """Skips the test for something this machine lacks; fails instead under CI=true."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + "; CI=true needs it")
    pytest.skip(message)


def require_file(path: Path) -> Path:
    """Skips the test when a shared file is absent; fails instead under CI=true."""
    if not path.exists():
        skip_or_fail(f"{path} is absent (shared model files live in {SHARED_DIR})")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child_env() -> dict:
    env = dict(os.environ)
    # Router, worker and test client share two cores: OpenMP threads must sleep when idle.
    env.setdefault("OMP_WAIT_POLICY", "passive")
    return env


MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMP_NUM_THREADS": "1"}


def spawn(argv, log_name, extra_env=None):
    """A process in a session of its own (so kill_group reaches its children), logging to a temp file."""
    log = open(Path(tempfile.gettempdir()) / f"strata-e2e-{log_name}-{uuid.uuid4().hex[:6]}.log", "wb")
    env = _child_env()
    env.update(MPI_ENV)
    env.update(extra_env or {})
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, start_new_session=True)


def kill_group(p):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=10)


def wait_for(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def strata_generate(model: str, prompt: str, max_tokens: int) -> str:
    """What `strata generate` prints for a greedy run: the single-process reference path."""
    out = subprocess.run([str(BIN / "strata"), "generate", "--model", model, "--prompt", prompt,
                          "--temperature", "0", "--max-tokens", str(max_tokens)],
                         capture_output=True, timeout=60, check=True)
    return out.stdout.decode("utf-8", errors="replace")


class StrataServer:
    """A router and one worker group; use as a context manager or call stop()."""

    def __init__(self, model: str = "builtin:tiny", router_args=(), worker_args=(), probe_headers=None,
                 endpoint: str = ""):
        self.model = model
        self.probe_headers = probe_headers or {}  # e.g. the API key when probes are protected
        self.router_args = list(router_args)
        self.worker_args = list(worker_args)
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.port = 0
        self.ipc_path = Path(tempfile.gettempdir()) / f"strata-e2e-{os.getpid()}-{uuid.uuid4().hex[:8]}.sock"
        # Where the router binds and the worker connects; "" ⇒ ipc at ipc_path.
        self.endpoint = endpoint
        self.base_url = ""

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = Path(tempfile.mkstemp(prefix=f"strata-e2e-{name}-", suffix=".log")[1])
        self.logs.append(log)
        with open(log, "wb") as f:
            # A session of its own so stop() can signal the process and anything it starts.
            p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=_child_env(), start_new_session=True)
        self.procs.append(p)
        return p

    def log_tail(self, chars: int = 4000) -> str:
        out = []
        for log in self.logs:
            try:
                out.append(f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}")
            except OSError:
                pass
        return "\n".join(out)

    def start(self) -> "StrataServer":
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        endpoint = self.endpoint or f"ipc://{self.ipc_path}"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        router = self._spawn("router", [str(BIN / "strata-router"), "--port", str(self.port),
                                        "--zmq-endpoint", endpoint, "--model", self.model,
                                        *self.router_args])
        worker = self._spawn("worker", [str(BIN / "strata-worker"), "--model", self.model,
                                        "--router", endpoint, *self.worker_args])
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            for name, p in (("router", router), ("worker", worker)):
                if p.poll() is not None:
                    raise RuntimeError(f"strata-{name} exited with {p.returncode} before /ready\n"
                                       + self.log_tail())
            try:
                if httpx.get(self.base_url + "/ready", headers=self.probe_headers,
                             timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"/ready not 200 within {READY_TIMEOUT_S} s\n" + self.log_tail())
            time.sleep(0.05)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)
        self.procs.clear()
        for path in [self.ipc_path, *self.logs]:
            try:
                path.unlink()
            except OSError:
                pass
        self.logs.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # Helpers for the tests.
    def url(self, path: str) -> str:
        return self.base_url + path

    def metrics(self) -> str:
        r = httpx.get(self.url("/metrics"), timeout=10)
        r.raise_for_status()
        return r.text


def metric_value(text: str, name: str, labels: str = "") -> float | None:
    """The value of sample `name{labels}` in Prometheus text (labels exactly as printed)."""
    key = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        parts = line.rsplit(" ", 1)
        if len(parts) == 2 and parts[0] == key:
            return float(parts[1])
    return None


@pytest.fixture(scope="module")
def tiny_server():
    """builtin:tiny behind a router, shared by a module's tests."""
    with StrataServer("builtin:tiny", worker_args=["--max-num-seqs", "64"]) as server:
        yield server


@pytest.fixture(scope="module")
def aidreams_server():
    """The trained aidreams260K llama2.c model behind a router (skips when absent)."""
    model = require_file(AIDREAMS)
    with StrataServer(str(model)) as server:
        yield server


@pytest.fixture
def server_factory():
    """Starts servers with custom options; every one is stopped at teardown."""
    servers: list[StrataServer] = []

    def make(model: str = "builtin:tiny", router_args=(), worker_args=()) -> StrataServer:
        s = StrataServer(model, router_args, worker_args)
        servers.append(s)
        return s.start()

    yield make
    for s in servers:
        s.stop()
