"""`strata serve --model file.gguf`: a GGUF of the trained aidreams260K llama2.c model, written by
the `gguf` package with its tokenizer and zephyr's published chat template in the metadata.

- Completions: greedy output equals the llama2.c path's, token for token: run.c's published
  greedy ids (reference-greedy.json) and `strata generate` on the original .bin.
- Chats: the prompt is the GGUF's own tokenizer.chat_template, rendered as transformers renders
  it (jinja2) with the BOS/EOS strings of the GGUF's vocabulary, read back by the `gguf` package;
  the chat's answer is the completion of exactly that prompt.
"""
from __future__ import annotations

import json

import gguf
import httpx
import pytest
from openai import OpenAI
from transformers.utils.chat_template_utils import _compile_jinja_template

from conftest import (AIDREAMS, BIN, BINARY_DIR, REFERENCE_GREEDY, free_port, kill_group, require_file,
                      spawn, strata_generate, wait_for)

CHAT_GGUF = BINARY_DIR / "test-data" / "gguf" / "aidreams260K_chat.gguf"
MESSAGES = [
    [{"role": "user", "content": "Echoes of vectors"}],
    [{"role": "system", "content": "You dream."}, {"role": "user", "content": "Contrast"},
     {"role": "assistant", "content": "a gentle hum"}, {"role": "user", "content": "of precision"}],
]


@pytest.fixture(scope="module")
def served():
    model = require_file(CHAT_GGUF)
    port = free_port()
    serve = spawn([str(BIN / "strata"), "serve", "--model", str(model), "--port", str(port), "--threads", "1"],
                  "serve-gguf")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: serve.poll() is None and httpx.get(base + "/ready", timeout=1).status_code == 200,
                 60, "strata serve --model x.gguf to be ready")
        yield base
    finally:
        kill_group(serve)


@pytest.fixture(scope="module")
def client(served):
    return OpenAI(base_url=served + "/v1", api_key="unused")


@pytest.fixture(scope="module")
def model_id(client):
    return client.models.list().data[0].id


def gguf_template():
    """(source, bos, eos) as the gguf package reads them from the file."""
    reader = gguf.GGUFReader(str(require_file(CHAT_GGUF)))
    field = lambda key: reader.fields[key].contents()
    tokens = field("tokenizer.ggml.tokens")
    return (field("tokenizer.chat_template"), tokens[field("tokenizer.ggml.bos_token_id")],
            tokens[field("tokenizer.ggml.eos_token_id")])


def tokenize(base, body):
    r = httpx.post(base + "/tokenize", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_greedy_completion_equals_run_c(served, client, model_id):
    cases = [c for c in json.loads(require_file(REFERENCE_GREEDY).read_text())["cases"]
             if c["model"].endswith("aidreams260K/aidreams260K.bin")]
    assert cases
    max_model_len = tokenize(served, {"prompt": "x"})["max_model_len"]
    for case in cases:
        assert tokenize(served, {"prompt": case["prompt"]})["tokens"] == case["prompt_ids"]
        n_out = min(len(case["output_ids"]), max_model_len - len(case["prompt_ids"]))
        r = client.completions.create(model=model_id, prompt=case["prompt"] or case["prompt_ids"],
                                      max_tokens=n_out, temperature=0,
                                      extra_body={"return_token_ids": True, "ignore_eos": True})
        stable = min(case["stable_prefix_len"], n_out)
        assert r.choices[0].token_ids[:stable] == case["output_ids"][:stable], case["id"]


@pytest.mark.parametrize("prompt", ["Echoes of", "Contrast", "I"])
def test_greedy_completion_equals_the_llama2c_file(client, model_id, prompt):
    want = strata_generate(str(require_file(AIDREAMS)), prompt, 50)
    got = client.completions.create(model=model_id, prompt=prompt, max_tokens=50, temperature=0)
    assert got.choices[0].text == want


@pytest.mark.parametrize("messages", MESSAGES)
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_tokenize_renders_the_gguf_chat_template(served, messages, add_generation_prompt):
    source, bos, eos = gguf_template()
    assert "<|user|>" in source  # the fixture carries zephyr's template
    text = _compile_jinja_template(source).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                                  bos_token=bos, eos_token=eos, tools=None, documents=None)
    want = tokenize(served, {"prompt": text, "add_special_tokens": False})["tokens"]
    got = tokenize(served, {"messages": messages, "add_generation_prompt": add_generation_prompt})["tokens"]
    assert got == want


@pytest.mark.parametrize("messages", MESSAGES)
def test_chat_answers_the_completion_of_its_rendered_prompt(served, client, model_id, messages):
    ids = tokenize(served, {"messages": messages})["tokens"]
    chat = client.chat.completions.create(model=model_id, messages=messages, max_tokens=24, temperature=0)
    plain = client.completions.create(model=model_id, prompt=ids, max_tokens=24, temperature=0)
    assert chat.usage.prompt_tokens == len(ids)
    assert chat.choices[0].message.content == plain.choices[0].text
    assert chat.choices[0].message.content
