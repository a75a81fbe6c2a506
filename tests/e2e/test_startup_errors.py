"""What a newcomer sees when a start goes wrong: each mistake gets one message that names
what was given and says what to do, from `strata serve`, the standalone strata-router and
strata-worker, and `strata generate` alike; `strata serve` says "ready" only once the router
answers /ready, and never after a failed start."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time

import httpx
import pytest

from conftest import AIDREAMS, BIN, _child_env, free_port, kill_group, require_file

TOKENIZER = AIDREAMS.parent / "tok512.bin"
KINDS = ["llama2.c .bin", ".gguf", "HF directory", "builtin:NAME", "strata models"]


def run(*argv, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, timeout=timeout,
                          env=_child_env(), stdin=subprocess.DEVNULL)


def assert_refused(out: subprocess.CompletedProcess, *expected: str, absent=()):
    """Exited 2 before starting anything, saying each of `expected`."""
    err = out.stderr.decode(errors="replace")
    assert out.returncode == 2, err
    for text in expected:
        assert text in err, err
    for text in ("pid", "ready on", *absent):
        assert text not in err, err


def test_missing_model_is_named_with_the_kinds_accepted_everywhere():
    for argv in (["strata", "serve"], ["strata-router"], ["strata-worker"],
                 ["strata", "generate", "--prompt", "x"]):
        out = run(*argv, "--model", "/nonexistent.bin")
        err = out.stderr.decode()
        assert out.returncode == 2, (argv, err)
        assert "model `/nonexistent.bin` does not exist" in err, (argv, err)
        assert all(kind in err for kind in KINDS), (argv, err)
        assert "no tokenizer found" not in err, (argv, err)


def test_address_not_on_this_machine_is_not_called_a_busy_port():
    for argv in (["strata", "serve"], ["strata-router"]):
        out = run(*argv, "--host", "203.0.113.5", "--port", str(free_port()))
        err = out.stderr.decode()
        assert out.returncode == 2, err
        assert "203.0.113.5 is not an address of this machine" in err, (argv, err)
        assert "0.0.0.0" in err and "127.0.0.1" in err, err
        assert "another server" not in err, err


def test_busy_port_is_reported_as_in_use():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert_refused(run("strata", "serve", "--port", str(port)), f"port {port} on 127.0.0.1 is in use")


def test_llama2c_files_given_in_each_others_place_say_which_flag_takes_them():
    model, tokenizer = str(require_file(AIDREAMS)), str(require_file(TOKENIZER))
    for argv in (["strata", "serve"], ["strata", "generate", "--prompt", "x"]):
        assert_refused(run(*argv, "--model", tokenizer),
                       f"`{tokenizer}` is not a llama2.c checkpoint", "pass it as --tokenizer",
                       absent=["intermediate_size"])
        assert_refused(run(*argv, "--model", model, "--tokenizer", model),
                       f"`{model}` is not a llama2.c tokenizer.bin", "pass it as --model",
                       absent=["has length"])
    out = run("strata-worker", "--model", tokenizer)
    assert out.returncode == 2 and "is not a llama2.c checkpoint" in out.stderr.decode(), out.stderr


def test_generate_without_a_prompt_asks_for_one():
    out = run("strata", "generate")
    err = out.stderr.decode()
    assert out.returncode == 2, err
    assert out.stdout == b"", out.stdout
    assert "--prompt" in err and "--prompt-ids" in err and "aidreams260K.bin" in err, err
    # An empty prompt is a prompt: generation starts from BOS alone. (--ignore-eos: a sampled
    # stop id would end it early, about once in 170 runs.)
    out = run("strata", "generate", "--prompt", "", "--max-tokens", "3", "--output-ids", "--threads", "1",
              "--ignore-eos")
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.split()) == 3, out.stdout


def test_help_shows_the_real_default_of_switches():
    help_text = run("strata", "serve", "--help").stdout.decode()
    assert "--cuda-graphs (default: on)" in help_text, help_text
    assert "--no-cuda-graphs" in help_text
    assert "{false}" not in help_text


class Serve:
    """`strata serve` with its stderr read line by line as it comes."""

    def __init__(self, *args):
        self.port = free_port()
        self.proc = subprocess.Popen([str(BIN / "strata"), "serve", "--port", str(self.port), "--threads", "1",
                                      *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, env=_child_env(), start_new_session=True)
        self.lines: list[tuple[str, int | None]] = []  # each line, with /ready's status as it came
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _ready_status(self) -> int | None:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/ready", timeout=2).status_code
        except httpx.HTTPError:
            return None

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace")
            self.lines.append((line, self._ready_status() if "ready on" in line else None))

    def text(self) -> str:
        return "".join(line for line, _ in self.lines)

    def wait_for_line(self, text: str, timeout_s: float):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.text():
                return
            if self.proc.poll() is not None:
                self.reader.join(timeout=5)
                break
            time.sleep(0.05)
        assert text in self.text(), self.text()


def test_serve_says_ready_only_when_the_router_answers_ready():
    serve = Serve("--model", "builtin:tiny")
    try:
        serve.wait_for_line("ready on", 60)
        ready = [(line, status) for line, status in serve.lines if "ready on" in line]
        assert ready[0][0].startswith(f"strata serve: ready on http://127.0.0.1:{serve.port}"), ready
        assert ready[0][1] == 200, serve.text()
        assert "starting the router" in serve.text().split("ready on")[0]
        os.killpg(serve.proc.pid, signal.SIGINT)
        assert serve.proc.wait(timeout=20) == 0
    finally:
        kill_group(serve.proc)


def test_unknown_builtin_preset_is_refused_before_anything_starts():
    for argv in (["strata", "serve"], ["strata", "generate", "--prompt", "x"]):
        out = run(*argv, "--model", "builtin:no-such-preset")
        err = out.stderr.decode()
        assert out.returncode != 0, (argv, err)
        assert "unknown builtin model `builtin:no-such-preset`" in err, (argv, err)
        assert "builtin:tiny" in err and "builtin:llama-110m" in err, (argv, err)
        assert "starting the router" not in err and "pid" not in err, (argv, err)


def assert_serve_fails_after_starting(*argv: str, says: tuple[str, ...]):
    """`strata serve argv` starts, fails once the worker group reads its model, says each of
    `says` and never "ready"."""
    serve = Serve(*argv)
    try:
        assert serve.proc.wait(timeout=60) != 0
        serve.reader.join(timeout=5)
        text = serve.text()
        for expected in ("starting the router", "startup failed: the worker group exited", *says):
            assert expected in text, text
        assert "ready on" not in text, text
    finally:
        kill_group(serve.proc)


def test_serve_that_fails_after_starting_never_says_ready(tmp_path):
    # A header of zeros passes every check made before start (it is no tokenizer) and fails
    # only when the worker reads it.
    model = tmp_path / "zeros.bin"
    model.write_bytes(bytes(64))
    assert_serve_fails_after_starting("--model", str(model), "--tokenizer", "builtin:bytes", says=("zeros.bin",))


def test_a_tokenizer_larger_than_the_models_vocabulary_is_a_startup_error():
    """A 32,000-token tokenizer in front of a 512-token model would fail every request with
    an id out of range; the router refuses the group instead, and serve never says ready."""
    model = require_file(AIDREAMS)
    tokenizer = require_file(AIDREAMS.parents[1] / "llama2-tokenizer" / "tokenizer.bin")
    assert_serve_fails_after_starting(
        "--model", str(model), "--tokenizer", str(tokenizer),
        says=("a vocabulary of 512 tokens, but the router's tokenizer has 32000", "--tokenizer"))
