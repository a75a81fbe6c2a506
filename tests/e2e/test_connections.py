"""The router's HTTP connections: a kept-alive connection stays open across many requests and
answers each without the Nagle + delayed-ACK stall, and the listening port is the router's
alone (no SO_REUSEPORT: a second server on it is refused instead of splitting the traffic),
and probes on --probe-port answer while slow clients hold connections."""
from __future__ import annotations

import errno
import http.client
import socket
import statistics
import subprocess
import threading
import time

import httpx
import pytest

from conftest import BIN, StrataServer, free_port

REQUESTS_ON_ONE_CONNECTION = 30
# Nagle's algorithm holding the body until the client's delayed ACK costs about 40 ms per
# response on Linux; without it a /health answer takes about a millisecond.
MEDIAN_LATENCY_LIMIT_S = 0.020


@pytest.fixture(scope="module")
def server():
    with StrataServer("builtin:tiny") as s:
        yield s


def test_one_connection_carries_many_requests_without_the_nagle_stall(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.connect()
    first_socket = conn.sock
    latencies = []
    for i in range(REQUESTS_ON_ONE_CONNECTION):
        start = time.monotonic()
        conn.request("GET", "/health")
        response = conn.getresponse()
        response_body = response.read()
        latencies.append(time.monotonic() - start)
        assert response.status == 200, response_body
        # httplib's default closes the connection after 5 requests ("Connection: close").
        assert response.getheader("Connection", "").lower() != "close", f"closed after request {i + 1}"
        assert conn.sock is first_socket, f"the connection was replaced after request {i + 1}"
    conn.close()
    median = statistics.median(latencies)
    assert median < MEDIAN_LATENCY_LIMIT_S, f"median /health on a reused connection {median * 1e3:.1f} ms"


def test_the_listening_port_cannot_be_shared(server):
    # With SO_REUSEPORT on the router's socket, a process of the same user could bind and
    # listen on the port too, and the kernel would split new connections between the two.
    intruder = socket.socket()
    intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        with pytest.raises(OSError) as refused:
            intruder.bind(("127.0.0.1", server.port))
        assert refused.value.errno == errno.EADDRINUSE
    finally:
        intruder.close()


def test_a_second_router_on_the_busy_port_exits_with_a_clear_error(server):
    out = subprocess.run([str(BIN / "strata-router"), "--port", str(server.port),
                          "--zmq-endpoint", f"ipc://{server.ipc_path}.second", "--model", "builtin:tiny"],
                         capture_output=True, timeout=30)
    err = out.stderr.decode()
    assert out.returncode != 0, err
    assert f"port {server.port} on 127.0.0.1 is in use" in err, err


def test_probes_on_their_own_port_answer_while_slow_clients_hold_connections():
    """--http-threads 1 and clients sending their headers a byte at a time: a connection holds
    no thread, so both --port and --probe-port answer, and --probe-port serves probes only."""
    probe_port = free_port()
    with StrataServer("builtin:tiny", router_args=["--http-threads", "1", "--probe-port", str(probe_port)]) as s:
        probe = f"http://127.0.0.1:{probe_port}"
        stop = threading.Event()

        def slow_client():
            with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
                c.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                while not stop.is_set():
                    c.sendall(b"X")  # a header that never ends
                    time.sleep(0.2)

        slow = [threading.Thread(target=slow_client) for _ in range(8)]
        for t in slow:
            t.start()
        try:
            time.sleep(0.5)
            for _ in range(10):
                assert httpx.get(s.url("/health"), timeout=2.0).status_code == 200
                for path in ("/health", "/ready", "/metrics"):
                    assert httpx.get(probe + path, timeout=2.0).status_code == 200, path
            assert httpx.get(probe + "/v1/models", timeout=2.0).status_code == 404  # probes only
        finally:
            stop.set()
            for t in slow:
                t.join()
