"""Malformed and hostile requests against a real router: each gets its documented status
and an OpenAI error body, nothing is a 500, and the server keeps serving afterwards."""
from __future__ import annotations

import json
import os
import socket
import threading
import time

import httpx
import pytest

from conftest import StrataServer, metric_value

READ_TIMEOUT_S = 2
MAX_BODY_BYTES = 1 << 20


@pytest.fixture(scope="module")
def server():
    with StrataServer("builtin:tiny", router_args=["--read-timeout-s", str(READ_TIMEOUT_S),
                                                   "--max-body-bytes", str(MAX_BODY_BYTES)]) as s:
        yield s


def http_request(method: str, path: str, body: bytes = b"", headers: dict | None = None) -> bytes:
    h = {"Host": "127.0.0.1", "Content-Type": "application/json",
         "Content-Length": str(len(body)), "Connection": "close"}
    h.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items() if v is not None)
    return head.encode() + b"\r\n" + body


def post(path: str, body) -> bytes:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http_request("POST", path, data)


def exchange(server, data: bytes, timeout: float = 10.0) -> tuple[int | None, dict, bytes]:
    """Sends raw bytes and reads one response; (None, {}, b"") when the server closed
    without answering. Does not half-close: httplib drops answers to half-closed peers."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass  # the server may answer (413) and close before reading everything
        raw = b""
        try:
            while b"\r\n\r\n" not in raw:
                chunk = s.recv(65536)
                if not chunk:
                    break
                raw += chunk
            if b"\r\n\r\n" not in raw:
                return None, {}, b""
            head, _, body = raw.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0"))
            while len(body) < length:
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
            return status, headers, body[:length]
        except (ConnectionResetError, socket.timeout):
            return None, {}, b""


def completion(**extra):
    return {"prompt": "hi", "max_tokens": 2, **extra}


def chat(**extra):
    return {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **extra}


C, CHAT = "/v1/completions", "/v1/chat/completions"
BIG = 10 * 1024 * 1024

# (name, raw request bytes, expected status, OpenAI error `param` or None to skip that check)
CASES = [
    ("bad_json", post(C, b'{"prompt": "x",'), 400, None),
    ("trailing_comma", post(C, b'{"prompt": "x",}'), 400, None),
    ("empty_body", post(C, b""), 400, None),
    ("json_null", post(C, b"null"), 400, None),
    ("json_array", post(C, b"[1, 2]"), 400, None),
    ("json_string", post(C, b'"prompt"'), 400, None),
    ("json_number", post(C, b"42"), 400, None),
    ("two_documents", post(C, b'{"prompt": "x"} {"prompt": "y"}'), 400, None),
    ("nested_junk_deep", post(C, b"[" * 100000 + b"]" * 100000), 400, None),
    ("nested_junk_in_unknown_field",
     post(C, b'{"prompt":"x","junk":' + b'{"a":' * 500 + b"1" + b"}" * 500 + b"}"), 400, None),
    ("huge_float", post(C, b'{"prompt":"x","max_tokens":1e400}'), 400, "max_tokens"),
    ("huge_int", post(C, b'{"prompt":"x","max_tokens":99999999999999999999999999}'), 400, "max_tokens"),
    ("negative_max_tokens", post(C, completion(max_tokens=-1)), 400, "max_tokens"),
    ("zero_max_tokens", post(C, completion(max_tokens=0)), 400, "max_tokens"),
    ("fractional_max_tokens", post(C, completion(max_tokens=1.5)), 400, "max_tokens"),
    ("string_max_tokens", post(C, completion(max_tokens="10")), 400, "max_tokens"),
    ("string_temperature", post(C, completion(temperature="hot")), 400, "temperature"),
    ("negative_temperature", post(C, completion(temperature=-1)), 400, "temperature"),
    ("huge_temperature", post(C, completion(temperature=1e39)), 400, "temperature"),
    ("top_p_above_one", post(C, completion(top_p=2)), 400, "top_p"),
    ("top_k_below_minus_one", post(C, completion(top_k=-5)), 400, "top_k"),
    ("n_zero", post(C, completion(n=0)), 400, "n"),
    ("n_huge", post(C, completion(n=100000)), 400, "n"),
    ("bool_n", post(C, completion(n=True)), 400, "n"),
    ("prompt_number", post(C, {"prompt": 123}), 400, "prompt"),
    ("prompt_object", post(C, {"prompt": {"text": "x"}}), 400, "prompt"),
    ("prompt_empty_array", post(C, {"prompt": []}), 400, "prompt"),
    ("prompt_negative_id", post(C, {"prompt": [-1]}), 400, "prompt[0]"),
    ("prompt_id_beyond_vocab", post(C, {"prompt": [10 ** 9]}), 400, "prompt[0]"),
    ("prompt_batch", post(C, {"prompt": ["a", "b"]}), 400, "prompt"),
    ("prompt_missing", post(C, {"max_tokens": 2}), 400, "prompt"),
    ("prompt_invalid_utf8", post(C, b'{"prompt":"\xff\xfe","max_tokens":2}'), 400, "prompt"),
    ("unknown_field_invalid_utf8", post(C, b'{"prompt":"a","zz":"\xc3\x28"}'), 400, None),
    ("lone_surrogate_escape", post(C, b'{"prompt":"\\ud800"}'), 400, None),
    ("raw_nul_in_string", post(C, b'{"prompt":"a\x00b"}'), 400, None),
    ("prompt_beyond_context", post(C, {"prompt": "x" * 2100, "max_tokens": 1}), 400, "prompt"),
    ("prompt_plus_max_tokens_beyond_context", post(C, completion(max_tokens=2048)), 400, "prompt"),
    ("max_tokens_beyond_context", post(C, completion(max_tokens=5000)), 400, "max_tokens"),
    ("stop_number", post(C, completion(stop=5)), 400, "stop"),
    ("stop_empty_string", post(C, completion(stop=[""])), 400, "stop[0]"),
    ("stop_too_many", post(C, completion(stop=[f"s{i}" for i in range(1000)])), 400, "stop"),
    ("stop_token_ids_bad", post(C, completion(stop_token_ids=["a"])), 400, "stop_token_ids[0]"),
    ("seed_negative", post(C, completion(seed=-1)), 400, "seed"),
    ("seed_string", post(C, completion(seed="abc")), 400, "seed"),
    ("logprobs_too_many", post(C, completion(logprobs=1000)), 400, "logprobs"),
    ("stream_string", post(C, completion(stream="yes")), 400, "stream"),
    ("stream_options_without_stream", post(C, completion(stream_options={"include_usage": True})),
     400, "stream_options"),
    ("logit_bias_unsupported", post(C, completion(logit_bias={"1": 5})), 400, "logit_bias"),
    ("presence_penalty_string", post(C, completion(presence_penalty="x")), 400, "presence_penalty"),
    ("unknown_model", post(C, completion(model="gpt-17")), 404, "model"),
    ("chat_messages_missing", post(CHAT, {"max_tokens": 2}), 400, "messages"),
    ("chat_messages_empty", post(CHAT, {"messages": []}), 400, "messages"),
    ("chat_messages_string", post(CHAT, {"messages": "hi"}), 400, "messages"),
    ("chat_unknown_role", post(CHAT, {"messages": [{"role": "wizard", "content": "x"}]}), 400,
     "messages[0].role"),
    ("chat_content_missing", post(CHAT, {"messages": [{"role": "user"}]}), 400, "messages[0].content"),
    ("chat_content_number", post(CHAT, {"messages": [{"role": "user", "content": 5}]}), 400,
     "messages[0].content"),
    ("chat_image_part", post(CHAT, {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x"}}]}]}), 400, "messages[0].content[0].type"),
    ("chat_top_logprobs_without_logprobs", post(CHAT, chat(top_logprobs=3)), 400, "top_logprobs"),
    ("chat_tool_without_function", post(CHAT, chat(tools=[{"type": "function"}])), 400, "tools[0].function"),
    ("chat_template_kwargs_not_object", post(CHAT, chat(chat_template_kwargs=[1])), 400, "chat_template_kwargs"),
    ("chat_tool_choice_required", post(CHAT, chat(tool_choice="required")), 400, "tool_choice"),
    ("chat_unknown_model", post(CHAT, chat(model="nope")), 404, "model"),
    ("tokenize_prompt_number", post("/tokenize", {"prompt": 5}), 400, "prompt"),
    ("tokenize_prompt_and_messages", post("/tokenize", {"prompt": "a", "messages": []}), 400, None),
    ("detokenize_negative", post("/detokenize", {"tokens": [-1]}), 400, "tokens[0]"),
    ("detokenize_string", post("/detokenize", {"tokens": "abc"}), 400, "tokens"),
    ("detokenize_huge_id", post("/detokenize", {"tokens": [1e10]}), 400, "tokens[0]"),
    ("body_10mb", post(C, b'{"prompt":"' + b"a" * BIG + b'"}'), 413, None),
    ("body_10mb_chunked",
     http_request("POST", C, b"%x\r\n" % (BIG + 13) + b'{"prompt":"' + b"a" * BIG + b'"}\r\n0\r\n\r\n',
                  {"Transfer-Encoding": "chunked", "Content-Length": None}), 413, None),
    ("unknown_route", http_request("GET", "/v2/everything"), 404, None),
    ("unknown_post_route", post("/v1/embeddings", {"input": "x"}), 404, None),
    ("wrong_method_get_completions", http_request("GET", C), 404, None),
    ("wrong_method_delete_models", http_request("DELETE", "/v1/models"), 404, None),
    ("wrong_method_post_health", post("/health", {}), 404, None),
    ("content_length_negative", http_request("POST", C, b'{"prompt":"x"}', {"Content-Length": "-5"}),
     400, None),
    ("content_length_not_a_number",
     http_request("POST", C, b'{"prompt":"x"}', {"Content-Length": "ten"}), 400, None),
    ("content_length_shorter_than_body",
     http_request("POST", C, b'{"prompt":"x","max_tokens":2}', {"Content-Length": "5"}), 400, None),
    ("chunked_garbage",
     http_request("POST", C, b"zzz\r\nhello\r\n0\r\n\r\n",
                  {"Transfer-Encoding": "chunked", "Content-Length": None}), 400, None),
    ("garbage_request_line", b"HELLO WORLD\r\n\r\n", 400, None),
    ("header_too_long", http_request("GET", "/health", b"", {"X-Junk": "a" * 100000}), 431, None),
    ("uri_too_long", http_request("GET", "/" + "a" * 20000), 414, None),
]


def test_table_has_enough_cases():
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("name,data,status,param", CASES, ids=[c[0] for c in CASES])
def test_bad_request_gets_documented_status(server, name, data, status, param):
    got, headers, body = exchange(server, data)
    assert got == status, f"{name}: {got} {body[:300]!r}"
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param, error
    assert server.alive()


def test_unknown_fields_are_accepted(server):
    r = httpx.post(server.url(C), json=completion(foo={"bar": [1, 2]}, metadata=None, zz=1e300),
                   timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["finish_reason"] in ("length", "stop")


def test_escaped_nul_is_accepted(server):
    status, _, body = exchange(server, http_request("POST", C, b'{"prompt":"a\\u0000b","max_tokens":2}'))
    assert status == 200, body


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain;charset=UTF-8",
                                          "application/x-www-form-urlencoded", "multipart/form-data"])
def test_bodies_a_browser_posts_cross_site_unasked_are_refused(server, content_type):
    """A web page may POST these types to any server without a CORS preflight; the API
    takes JSON only, so a local page cannot drive a local server."""
    status, _, body = exchange(server, http_request("POST", C, b'{"prompt":"a","max_tokens":2}',
                                                    {"Content-Type": content_type}))
    assert status == 415, body
    assert "application/json" in json.loads(body)["error"]["message"]


def test_truncated_body_is_dropped_after_read_timeout(server):
    """Content-Length promises more than is sent: the server waits at most its read
    timeout, then closes; other clients are served meanwhile."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=READ_TIMEOUT_S + 8) as s:
        s.sendall(http_request("POST", C, b'{"prompt":"x"', {"Content-Length": "100"}))
        start = time.monotonic()
        assert httpx.get(server.url("/health"), timeout=5).status_code == 200
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        elapsed = time.monotonic() - start
    assert elapsed < READ_TIMEOUT_S + 5, elapsed
    assert b" 500 " not in data


def test_slow_loris_does_not_block_others_and_is_closed(server):
    """Headers sent a byte at a time, then never finished: normal requests go on being
    served, and the slow connection is closed within the read timeout of going silent."""
    partial = b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    slow = [socket.create_connection(("127.0.0.1", server.port), timeout=READ_TIMEOUT_S + 8)
            for _ in range(8)]
    stop = threading.Event()
    served = []

    def normal_clients():
        while not stop.is_set():
            r = httpx.post(server.url(C), json=completion(), timeout=10)
            served.append(r.status_code)

    t = threading.Thread(target=normal_clients)
    t.start()
    try:
        for i in range(0, len(partial)):
            for s in slow:
                s.sendall(partial[i:i + 1])
            time.sleep(0.02)
        silent_since = time.monotonic()
        for s in slow:
            while s.recv(4096):  # until the server closes it (any answer is read past)
                pass
        elapsed = time.monotonic() - silent_since
    finally:
        stop.set()
        t.join()
        for s in slow:
            s.close()
    assert elapsed < READ_TIMEOUT_S + 5, elapsed
    assert served and all(code == 200 for code in served), served
    assert len(served) >= 3


def test_server_still_serves_after_the_table(server):
    r = httpx.post(server.url(C), json={"prompt": "still alive", "max_tokens": 4}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["completion_tokens"] >= 1
    metrics = server.metrics()
    assert 'status="500"' not in metrics
    assert server.alive()


def test_random_urls_do_not_grow_the_metrics(server):
    """Every unknown path is one `unmatched` series: 20,000 random 404s leave /metrics small."""
    before = server.metrics()
    with httpx.Client(timeout=10) as client:
        for i in range(20_000):
            r = client.get(server.url(f"/no/such/{i:05d}-{os.urandom(6).hex()}"))
            assert r.status_code == 404
    after = server.metrics()
    assert len(after.encode()) < 1_000_000, len(after)
    assert len(after) - len(before) < 2_000, "each random path became a series"
    unmatched = metric_value(after, "strata_http_requests_total", 'route="unmatched",status="404"')
    assert unmatched is not None and unmatched >= 20_000, unmatched
    assert "/no/such/" not in after
