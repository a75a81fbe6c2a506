"""A model directory whose tokenizer_config.json ships a Jinja chat template: the router renders
that template (not a built-in format) for /tokenize and /v1/chat/completions, honours
add_generation_prompt, tools and chat_template_kwargs as vLLM does, and answers a template's
raise_exception with a 400 carrying its message.

The model is the trained aidreams260K llama2.c checkpoint with its tokenizer, linked into a
temporary directory next to the tokenizer_config.json; the reference prompt is rendered by
transformers' own compiled template (jinja2) and tokenized by the server's /tokenize.
"""
from __future__ import annotations

import json

import httpx
import pytest
from transformers.utils.chat_template_utils import _compile_jinja_template

from conftest import AIDREAMS, StrataServer, require_file

TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System messages are not supported by this model') }}{% endif %}"
    "{% for m in messages %}<{{ m.role }}>{{ m.content | trim }}\n{% endfor %}"
    "{% if greeting is defined %}[{{ greeting }}]{% endif %}"
    "{% if tools %}{{ tools | tojson }}{% endif %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)
BOS, EOS = "<s>", "</s>"
MESSAGES = [{"role": "user", "content": " Echoes of vectors "}, {"role": "assistant", "content": "a gentle hum"},
            {"role": "user", "content": "of precision"}]
TOOL = {"type": "function", "function": {"name": "dream", "description": "Dream", "parameters": {"type": "object"}}}


def reference(messages=MESSAGES, add_generation_prompt=True, tools=None, **kwargs) -> str:
    return _compile_jinja_template(TEMPLATE).render(
        messages=messages, tools=tools, documents=None, add_generation_prompt=add_generation_prompt,
        bos_token=BOS, eos_token=EOS, **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model = require_file(AIDREAMS)
    d = tmp_path_factory.mktemp("templated-model")
    (d / model.name).symlink_to(model)
    (d / "tok512.bin").symlink_to(model.parent / "tok512.bin")
    (d / "tokenizer_config.json").write_text(json.dumps({"bos_token": BOS, "eos_token": EOS, "chat_template": TEMPLATE}))
    with StrataServer(str(d / model.name)) as s:
        yield s


def post(server, path, body):
    return httpx.post(server.url(path), json=body, timeout=30)


def tokens_of_text(server, text):
    r = post(server, "/tokenize", {"prompt": text, "add_special_tokens": False})
    assert r.status_code == 200, r.text
    return r.json()["tokens"]


def tokens_of_chat(server, **body):
    r = post(server, "/tokenize", {"messages": MESSAGES, **body})
    assert r.status_code == 200, r.text
    return r.json()["tokens"]


def test_tokenize_messages_renders_the_models_own_template(server):
    assert tokens_of_chat(server) == tokens_of_text(server, reference())
    assert tokens_of_chat(server, add_generation_prompt=False) == tokens_of_text(server, reference(add_generation_prompt=False))


def test_chat_template_kwargs_and_tools_reach_the_template(server):
    plain = tokens_of_chat(server)
    greeted = tokens_of_chat(server, chat_template_kwargs={"greeting": "hello"})
    assert greeted != plain
    assert greeted == tokens_of_text(server, reference(greeting="hello"))
    with_tools = tokens_of_chat(server, tools=[TOOL])
    assert with_tools == tokens_of_text(server, reference(tools=[TOOL]))


def test_chat_completion_prompt_is_the_rendered_template(server):
    r = post(server, "/v1/chat/completions", {"messages": MESSAGES, "max_tokens": 2, "temperature": 0,
                                              "chat_template_kwargs": {"greeting": "hi"}})
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["prompt_tokens"] == len(tokens_of_text(server, reference(greeting="hi")))
    r = post(server, "/v1/chat/completions", {"messages": MESSAGES, "max_tokens": 2, "add_generation_prompt": False})
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["prompt_tokens"] == len(tokens_of_text(server, reference(add_generation_prompt=False)))


@pytest.mark.parametrize("path", ["/tokenize", "/v1/chat/completions"])
def test_template_raise_exception_is_a_400_with_its_message(server, path):
    r = post(server, path, {"messages": [{"role": "system", "content": "x"}, *MESSAGES], "max_tokens": 2})
    assert r.status_code == 400, r.text
    assert "System messages are not supported by this model" in r.json()["error"]["message"]
    assert server.alive()


def test_bad_chat_template_kwargs_is_a_400_naming_the_field(server):
    r = post(server, "/tokenize", {"messages": MESSAGES, "chat_template_kwargs": "greeting"})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "chat_template_kwargs"
