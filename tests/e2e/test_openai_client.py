"""The OpenAI API of strata-router, driven by the official `openai` Python client against a
real router and worker (builtin:tiny, and the trained aidreams260K model where present)."""
from __future__ import annotations

import json
import subprocess

import httpx
import openai
import pytest

from conftest import AIDREAMS, BIN, REFERENCE_GREEDY, require_file, strata_generate

CHAT = [{"role": "user", "content": "Say something."}]


def client_for(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url("/v1"), api_key="x", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def tiny(tiny_server):
    return client_for(tiny_server)


@pytest.fixture(scope="module")
def aidreams(aidreams_server):
    client = client_for(aidreams_server)
    client.model_id = client.models.list().data[0].id  # the name the API serves it under
    return client


def tokenize(server, **body) -> dict:
    r = httpx.post(server.url("/tokenize"), json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


# --- plain completions and chat ---------------------------------------------------------

def test_completion_returns_text_and_usage(tiny, tiny_server):
    r = tiny.completions.create(model="builtin:tiny", prompt="Hello", max_tokens=8,
                                temperature=0, extra_body={"ignore_eos": True})
    assert r.object == "text_completion"
    assert r.model == "builtin:tiny"
    assert len(r.choices) == 1 and r.choices[0].index == 0
    assert r.choices[0].finish_reason == "length"
    assert isinstance(r.choices[0].text, str)
    assert r.usage.completion_tokens == 8
    assert r.usage.prompt_tokens == tokenize(tiny_server, prompt="Hello")["count"]
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_returns_assistant_message(tiny):
    r = tiny.chat.completions.create(model="builtin:tiny", messages=CHAT, max_tokens=6,
                                     extra_body={"ignore_eos": True})
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert isinstance(r.choices[0].message.content, str)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 6


def test_streamed_completion_equals_non_streamed(tiny):
    kwargs = dict(model="builtin:tiny", prompt="Once upon", max_tokens=12, temperature=0,
                  extra_body={"ignore_eos": True, "return_token_ids": True})
    whole = tiny.completions.create(**kwargs)
    text, ids, finish = "", [], None
    for chunk in tiny.completions.create(stream=True, **kwargs):
        for c in chunk.choices:
            text += c.text
            ids += getattr(c, "token_ids", None) or []
            finish = c.finish_reason or finish
    assert ids == whole.choices[0].token_ids
    assert text == whole.choices[0].text
    assert finish == "length"


def test_streamed_chat_with_usage(tiny):
    stream = tiny.chat.completions.create(model="builtin:tiny", messages=CHAT, max_tokens=7,
                                          temperature=0, stream=True,
                                          stream_options={"include_usage": True},
                                          extra_body={"ignore_eos": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 7
    whole = tiny.chat.completions.create(model="builtin:tiny", messages=CHAT, max_tokens=7,
                                         temperature=0, extra_body={"ignore_eos": True})
    assert content == whole.choices[0].message.content
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_raw_stream_ends_with_done(tiny_server):
    with httpx.stream("POST", tiny_server.url("/v1/completions"), timeout=30,
                      json={"prompt": "x", "max_tokens": 4, "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    for e in events[:-1]:
        json.loads(e[len("data: "):])


# --- sampling parameters ----------------------------------------------------------------

def test_same_seed_same_text_and_different_seeds_differ(tiny):
    def sample(seed):
        r = tiny.completions.create(model="builtin:tiny", prompt="The", max_tokens=24,
                                    temperature=0.8, seed=seed,
                                    extra_body={"ignore_eos": True, "return_token_ids": True})
        return r.choices[0].token_ids, r.choices[0].text

    a, b = sample(1234), sample(1234)
    assert a == b
    others = {tuple(sample(seed)[0]) for seed in (1, 2, 3)}
    assert len(others | {tuple(a[0])}) > 1, "different seeds gave the same tokens"


def test_n_choices_have_indices(tiny):
    r = tiny.completions.create(model="builtin:tiny", prompt="n", max_tokens=5, n=3,
                                temperature=0.8, seed=7, extra_body={"ignore_eos": True})
    assert sorted(c.index for c in r.choices) == [0, 1, 2]
    assert r.usage.completion_tokens == 15
    chat = tiny.chat.completions.create(model="builtin:tiny", messages=CHAT, max_tokens=3, n=2,
                                        temperature=0.8)
    assert sorted(c.index for c in chat.choices) == [0, 1]


def test_n_choices_streamed(tiny):
    indices = set()
    for chunk in tiny.completions.create(model="builtin:tiny", prompt="n", max_tokens=4, n=2,
                                         stream=True, extra_body={"ignore_eos": True}):
        indices |= {c.index for c in chunk.choices}
    assert indices == {0, 1}


def test_return_token_ids_decode_to_text(tiny, tiny_server):
    r = tiny.completions.create(model="builtin:tiny", prompt="abc", max_tokens=10, temperature=0,
                                extra_body={"return_token_ids": True, "ignore_eos": True})
    c = r.choices[0]
    assert len(c.token_ids) == r.usage.completion_tokens == 10
    assert r.model_extra["prompt_token_ids"] == tokenize(tiny_server, prompt="abc")["tokens"]
    chat = tiny.chat.completions.create(model="builtin:tiny", messages=CHAT, max_tokens=5,
                                        extra_body={"return_token_ids": True, "ignore_eos": True})
    assert len(chat.choices[0].token_ids) == chat.usage.completion_tokens == 5


def test_ignore_eos_gives_exactly_max_tokens(tiny):
    for max_tokens in (1, 17, 64):
        r = tiny.completions.create(model="builtin:tiny", prompt="eos", max_tokens=max_tokens,
                                    temperature=1.0, extra_body={"ignore_eos": True,
                                                                 "return_token_ids": True})
        assert r.usage.completion_tokens == max_tokens
        assert len(r.choices[0].token_ids) == max_tokens
        assert r.choices[0].finish_reason == "length"


def test_usage_matches_tokenizer(tiny, tiny_server):
    for prompt in ("a", "Hello, world!", "ünïcödé ✓ text", "x" * 300):
        r = tiny.completions.create(model="builtin:tiny", prompt=prompt, max_tokens=3,
                                    extra_body={"return_token_ids": True})
        assert r.usage.prompt_tokens == tokenize(tiny_server, prompt=prompt,
                                                 add_special_tokens=True)["count"]
        assert r.usage.completion_tokens == len(r.choices[0].token_ids)
    chat = tiny.chat.completions.create(model="builtin:tiny", messages=CHAT, max_tokens=3,
                                        extra_body={"return_token_ids": True})
    counted = tokenize(tiny_server, messages=CHAT, add_generation_prompt=True,
                       add_special_tokens=True)
    assert chat.usage.prompt_tokens == counted["count"]
    assert chat.model_extra["prompt_token_ids"] == counted["tokens"]
    assert chat.usage.completion_tokens == len(chat.choices[0].token_ids)


def test_completion_logprobs_structure(tiny):
    r = tiny.completions.create(model="builtin:tiny", prompt="lp", max_tokens=6, logprobs=3,
                                extra_body={"ignore_eos": True})
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 6
    assert len(lp.text_offset) == 6 and lp.text_offset == sorted(lp.text_offset)
    for chosen, top in zip(lp.token_logprobs, lp.top_logprobs):
        assert chosen <= 0.0
        # Keys are decoded token strings: byte tokens >= 0x80 all decode to U+FFFD and share
        # one key (the order is only meaningful without such collisions).
        assert 1 <= len(top) <= 3
        values = list(top.values())
        assert all(v <= 0.0 for v in values)
        if len(top) == 3:
            assert values == sorted(values, reverse=True)
    # Each token decodes alone: a UTF-8 character split over two byte tokens shows as two
    # U+FFFD in `tokens` and as itself in `text`.
    if r.choices[0].text.isascii():
        assert "".join(lp.tokens) == r.choices[0].text


def test_completion_logprobs_sorted_on_trained_model(aidreams):
    r = aidreams.completions.create(model=aidreams.model_id, prompt="Echoes of", max_tokens=20,
                                    temperature=0, logprobs=3)
    lp = r.choices[0].logprobs
    assert "".join(lp.tokens) == r.choices[0].text
    for token, chosen, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        values = list(top.values())
        assert chosen <= 0.0 and all(v <= 0.0 for v in values)
        assert values == sorted(values, reverse=True)
        # Greedy: the chosen token is the most likely one.
        assert token in top and abs(top[token] - values[0]) < 1e-5
        assert abs(chosen - values[0]) < 1e-5


def test_chat_logprobs_structure(tiny):
    r = tiny.chat.completions.create(model="builtin:tiny", messages=CHAT, max_tokens=5,
                                     logprobs=True, top_logprobs=4,
                                     extra_body={"ignore_eos": True})
    content = r.choices[0].logprobs.content
    assert len(content) == 5
    for entry in content:
        assert entry.logprob <= 0.0
        assert isinstance(entry.bytes, list)
        assert len(entry.top_logprobs) == 4
        values = [t.logprob for t in entry.top_logprobs]
        assert values == sorted(values, reverse=True)
        assert all(v <= 0.0 for v in values)
        assert entry.logprob <= values[0] + 1e-5
    plain = tiny.chat.completions.create(model="builtin:tiny", messages=CHAT, max_tokens=2)
    assert plain.choices[0].logprobs is None


def test_streamed_chat_logprobs(tiny):
    entries = []
    for chunk in tiny.chat.completions.create(model="builtin:tiny", messages=CHAT, max_tokens=4,
                                              logprobs=True, top_logprobs=2, stream=True,
                                              extra_body={"ignore_eos": True}):
        for c in chunk.choices:
            if c.logprobs and c.logprobs.content:
                entries += c.logprobs.content
    assert len(entries) == 4
    assert all(e.logprob <= 0.0 and len(e.top_logprobs) == 2 for e in entries)


# --- the trained model: stop strings and greedy equality -------------------------------

def test_stop_string_cuts_text_before_it(aidreams):
    model = aidreams.model_id
    full = aidreams.completions.create(model=model, prompt="Echoes of", max_tokens=60,
                                       temperature=0).choices[0].text
    # A stop string from the middle of the greedy text: the output must end right before
    # its first occurrence.
    for stop in (full[20:26], full[40:43], " a"):
        cut = full.find(stop)
        assert cut >= 0
        r = aidreams.completions.create(model=model, prompt="Echoes of", max_tokens=60,
                                        temperature=0, stop=[stop, "\u2603never"])
        assert r.choices[0].text == full[:cut], stop
        assert stop not in r.choices[0].text
        assert r.choices[0].finish_reason == "stop"
        streamed = "".join(ch.choices[0].text for ch in aidreams.completions.create(
            model=model, prompt="Echoes of", max_tokens=60, temperature=0, stop=stop,
            stream=True) if ch.choices)
        assert streamed == full[:cut]


def test_stop_string_absent_finishes_by_length(aidreams):
    r = aidreams.completions.create(model=aidreams.model_id, prompt="Echoes of", max_tokens=10,
                                    temperature=0, stop=["\u2603"])
    assert r.choices[0].finish_reason == "length"


@pytest.mark.parametrize("prompt,max_tokens", [("Echoes of", 60), ("Contrast", 40), ("I", 100)])
def test_greedy_http_equals_strata_generate(aidreams, prompt, max_tokens):
    expected = strata_generate(str(AIDREAMS), prompt, max_tokens)
    r = aidreams.completions.create(model=aidreams.model_id, prompt=prompt, max_tokens=max_tokens,
                                    temperature=0)
    assert r.choices[0].text == expected


def test_greedy_http_equals_reference(aidreams, aidreams_server):
    cases = json.loads(require_file(REFERENCE_GREEDY).read_text())["cases"]
    cases = [c for c in cases if c["model"].endswith("aidreams260K/aidreams260K.bin")]
    assert cases
    max_model_len = tokenize(aidreams_server, prompt="x")["max_model_len"]
    for case in cases:
        # run.c also samples the token after the last position (steps - prompt + 1 tokens);
        # the server holds prompt + max_tokens <= max_model_len.
        n_out = min(len(case["output_ids"]), max_model_len - len(case["prompt_ids"]))
        # An empty prompt is refused as text; its ids (BOS alone) are accepted.
        prompt = case["prompt"] or case["prompt_ids"]
        assert tokenize(aidreams_server, prompt=case["prompt"])["tokens"] == case["prompt_ids"]
        r = aidreams.completions.create(model=aidreams.model_id, prompt=prompt, max_tokens=n_out,
                                        temperature=0, extra_body={"return_token_ids": True,
                                                                   "ignore_eos": True})
        stable = min(case["stable_prefix_len"], n_out)
        assert r.choices[0].token_ids[:stable] == case["output_ids"][:stable], case["id"]
        if stable == len(case["output_ids"]) and case["stdout"].isascii():
            # run.c prints the prompt, then the output; the piece right after BOS loses its
            # leading space.
            assert (case["prompt"] + r.choices[0].text).lstrip(" ") == case["stdout"], case["id"]


# --- the other routes -------------------------------------------------------------------

def test_models_lists_the_served_model(tiny):
    models = tiny.models.list().data
    assert [m.id for m in models] == ["builtin:tiny"]
    assert models[0].object == "model"


def test_empty_prompt_starts_from_bos(tiny):
    """OpenAI and llama.cpp's server accept prompt "": the model continues from BOS alone."""
    empty = tiny.completions.create(model="builtin:tiny", prompt="", max_tokens=6, temperature=0,
                                    extra_body={"ignore_eos": True})
    bos = tiny.completions.create(model="builtin:tiny", prompt=[1], max_tokens=6, temperature=0,
                                  extra_body={"ignore_eos": True})
    assert empty.usage.prompt_tokens == 1
    assert empty.choices[0].text == bos.choices[0].text


def test_best_of_below_n_is_rejected_as_openai_does(tiny):
    with pytest.raises(openai.BadRequestError) as e:
        tiny.completions.create(model="builtin:tiny", prompt="x", max_tokens=2, n=2, best_of=1)
    assert e.value.body["param"] == "best_of"
    assert "must be >= `n`" in e.value.body["message"]


def test_models_retrieve_names_the_served_model_and_404s_others(tiny):
    m = tiny.models.retrieve("builtin:tiny")
    assert m.id == "builtin:tiny" and m.object == "model"
    with pytest.raises(openai.NotFoundError) as e:
        tiny.models.retrieve("gpt-4")
    assert e.value.body["code"] == "model_not_found"


def test_health_and_ready(tiny_server):
    h = httpx.get(tiny_server.url("/health"), timeout=5)
    assert h.status_code == 200 and h.json()["status"] == "ok"
    assert h.json()["groups"][0]["alive"] is True
    r = httpx.get(tiny_server.url("/ready"), timeout=5)
    assert r.status_code == 200 and r.json() == {"ready": True}


@pytest.mark.parametrize("server_fixture,text", [("tiny_server", "Hello, wörld ✓"),
                                                  ("aidreams_server", "Echoes of vectors")])
def test_tokenize_detokenize_round_trip(request, server_fixture, text):
    server = request.getfixturevalue(server_fixture)
    t = tokenize(server, prompt=text, add_special_tokens=False)
    assert t["count"] == len(t["tokens"]) > 0
    assert t["max_model_len"] in (2048, 128)
    d = httpx.post(server.url("/detokenize"), json={"tokens": t["tokens"]}, timeout=5)
    assert d.status_code == 200, d.text
    assert d.json()["prompt"].strip() == text
    with_bos = tokenize(server, prompt=text)
    assert with_bos["count"] == t["count"] + 1


def test_metrics_count_finished_requests(tiny_server):
    text = tiny_server.metrics()
    assert "strata_requests_total" in text
    assert "strata_kv_blocks_total{group=\"g0\"}" in text
    assert "strata_time_to_first_token_seconds_count" in text
