"""Who may use a real router, checked on each request's head: API keys as OpenAI clients send
them (the `openai` client is the reference for what a 401 looks like to a user), the Host
and Origin checks that keep web pages off a local server, and the header limits that keep
one request from meaning two things."""
from __future__ import annotations

import json
import socket

import httpx
import openai
import pytest

from conftest import StrataServer

C = "/v1/completions"
BODY = {"prompt": "a", "max_tokens": 2, "temperature": 0}


def raw_exchange(port: int, head_lines: list[str], body: bytes = b"") -> tuple[int, dict, bytes]:
    """One request written byte for byte (headers in the order given), one response read."""
    data = "\r\n".join(head_lines).encode() + b"\r\n\r\n" + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split(" ")[1]), headers, rest


def error_of(r: httpx.Response) -> dict:
    return r.json()["error"]


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    key_file = tmp_path_factory.mktemp("keys") / "keys.txt"
    key_file.write_text("# operators' keys\nfile-key-1\n\n  file-key-2  \n")
    with StrataServer("builtin:tiny", router_args=["--api-key", "flag-key-a,flag-key-b",
                                                   "--api-key-file", str(key_file)]) as s:
        yield s


def test_requests_without_a_key_get_401_as_openai_answers(keyed):
    r = httpx.post(keyed.url(C), json=BODY, timeout=30)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    e = error_of(r)
    assert e["code"] == "invalid_api_key" and e["type"] == "invalid_request_error"
    assert "Authorization: Bearer" in e["message"]
    for path in ("/v1/models", "/tokenize"):
        assert httpx.request("GET" if path == "/v1/models" else "POST", keyed.url(path),
                             json={"prompt": "a"}, timeout=10).status_code == 401


@pytest.mark.parametrize("key", ["flag-key-a", "flag-key-b", "file-key-1", "file-key-2"])
def test_every_configured_key_is_accepted(keyed, key):
    r = httpx.post(keyed.url(C), json=BODY, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["completion_tokens"] == 2


@pytest.mark.parametrize("auth", ["Bearer flag-key-", "Bearer flag-key-ab", "Basic flag-key-a",
                                  "Bearer # operators' keys", "flag-key-a"])
def test_wrong_keys_and_schemes_are_refused(keyed, auth):
    r = httpx.post(keyed.url(C), json=BODY, headers={"Authorization": auth}, timeout=30)
    assert r.status_code == 401, r.text
    assert error_of(r)["code"] == "invalid_api_key"


def test_openai_client_reports_a_wrong_key_as_authentication_error(keyed):
    good = openai.OpenAI(base_url=keyed.url("/v1"), api_key="file-key-2", max_retries=0)
    assert good.completions.create(model=good.models.list().data[0].id, prompt="a",
                                   max_tokens=2).usage.completion_tokens == 2
    bad = openai.OpenAI(base_url=keyed.url("/v1"), api_key="guess", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.models.list()
    assert info.value.status_code == 401 and info.value.code == "invalid_api_key"


def test_probes_and_metrics_are_open_by_default(keyed):
    for path in ("/health", "/ready", "/metrics"):
        assert httpx.get(keyed.url(path), timeout=10).status_code == 200, path


def test_protected_probes_and_metrics_and_the_env_key(monkeypatch):
    monkeypatch.setenv("STRATA_API_KEY", "env-key-1, env-key-2")
    auth = {"Authorization": "Bearer env-key-2"}
    with StrataServer("builtin:tiny", router_args=["--protect-probes", "--protect-metrics"],
                      probe_headers=auth) as s:
        for path in ("/health", "/ready", "/metrics"):
            assert httpx.get(s.url(path), timeout=10).status_code == 401, path
            assert httpx.get(s.url(path), headers=auth, timeout=10).status_code == 200, path
        r = httpx.post(s.url(C), json=BODY, headers={"Authorization": "Bearer env-key-1"}, timeout=30)
        assert r.status_code == 200, r.text


def test_an_unreadable_key_file_is_a_startup_error(tmp_path):
    missing = tmp_path / "no-such-keys.txt"
    with pytest.raises(RuntimeError) as info:
        StrataServer("builtin:tiny", router_args=["--api-key-file", str(missing)]).start()
    assert f"--api-key-file {missing}: cannot be read" in str(info.value)


@pytest.fixture(scope="module")
def server():
    with StrataServer("builtin:tiny", router_args=["--allowed-origins", "http://app.example:3000"]) as s:
        yield s


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8000", "10.1.2.3"])
def test_foreign_host_names_are_refused_on_a_loopback_server(server, host):
    """DNS rebinding: a page whose name now resolves to 127.0.0.1 still sends its own Host."""
    r = httpx.post(server.url(C), json=BODY, headers={"Host": host}, timeout=30)
    assert r.status_code == 403, r.text
    assert error_of(r)["code"] == "host_not_allowed"


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:1", "127.0.0.1", "[::1]:80"])
def test_loopback_host_names_are_served(server, host):
    r = httpx.post(server.url(C), json=BODY, headers={"Host": host}, timeout=30)
    assert r.status_code == 200, r.text


def test_a_cross_site_page_is_refused_and_an_allowed_origin_gets_cors(server):
    r = httpx.post(server.url(C), json=BODY, headers={"Origin": "http://evil.example"}, timeout=30)
    assert r.status_code == 403, r.text
    assert error_of(r)["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in r.headers

    pre = httpx.options(server.url(C), headers={"Origin": "http://app.example:3000",
                                                "Access-Control-Request-Method": "POST",
                                                "Access-Control-Request-Headers": "authorization, content-type"},
                        timeout=10)
    assert pre.status_code == 204, pre.text
    assert pre.headers["access-control-allow-origin"] == "http://app.example:3000"
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert "content-type" in pre.headers["access-control-allow-headers"].lower()

    r = httpx.post(server.url(C), json=BODY, headers={"Origin": "http://app.example:3000"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == "http://app.example:3000"


def test_a_page_of_the_servers_own_origin_is_served(server):
    r = httpx.post(server.url(C), json=BODY, headers={"Origin": f"http://127.0.0.1:{server.port}"},
                   timeout=30)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("lengths", [("13", "13"), ("13", "200")])
def test_two_content_lengths_are_refused(server, lengths):
    """A proxy reading one and this server the other would disagree on where the request
    ends: request smuggling."""
    body = json.dumps(BODY).encode()
    status, headers, rest = raw_exchange(server.port, [
        f"POST {C} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
        *(f"Content-Length: {n}" for n in lengths), "Connection: close"], body)
    assert status == 400, rest
    assert "Content-Length" in json.loads(rest)["error"]["message"]
    assert headers.get("connection") == "close"


def test_too_many_header_fields_get_431(server):
    status, _, rest = raw_exchange(server.port, [
        "GET /health HTTP/1.1", "Host: 127.0.0.1", *(f"X-Filler-{i}: {i}" for i in range(150)),
        "Connection: close"])
    assert status == 431, rest
    assert "header fields" in json.loads(rest)["error"]["message"]
    assert httpx.get(server.url("/health"), timeout=10).status_code == 200
