"""strata's chat template rendering, byte for byte against Python jinja2 as HF renders it.

For each published template in chat_templates/ and many requests (system or not,
multi-turn, tool calls and results, content as parts, generation prompt on and off,
chat_template_kwargs), the reference is transformers 4.46.3's own compiled template
(`_compile_jinja_template`: ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
loopcontrols, raise_exception, strftime_now, json.dumps tojson) rendered with the variables
vLLM passes (its message conversion is written out below), and strata's is the
chat_template_render CLI, which runs the router's request parser and render_chat. Where the
reference raises raise_exception's TemplateError, strata must fail with the same message;
where it raises anything else, strata must fail too.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import tempfile
from pathlib import Path

import jinja2
import jinja2.nodes
import pytest
from transformers.utils.chat_template_utils import _compile_jinja_template

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "chat_templates"
RENDER = os.environ.get("CHAT_TEMPLATE_RENDER", str(HERE.parents[1] / "build" / "bin" / "chat_template_render"))

# bos/eos as each model's tokenizer_config.json gives them.
TOKENS = {
    "meta-llama-Llama-2-7b-chat-hf": ("<s>", "</s>"),
    "meta-llama-Llama-3.1-8B-Instruct": ("<|begin_of_text|>", "<|eot_id|>"),
    "meta-llama-Llama-3.2-3B-Instruct": ("<|begin_of_text|>", "<|eot_id|>"),
    "mistralai-Mistral-7B-Instruct-v0.2": ("<s>", "</s>"),
    "mistralai-Mixtral-8x7B-Instruct-v0.1": ("<s>", "</s>"),
    "mistralai-Mistral-Nemo-Instruct-2407": ("<s>", "</s>"),
    "Qwen-Qwen2.5-7B-Instruct": ("", "<|im_end|>"),
    "Qwen-Qwen2-VL-7B-Instruct": ("", "<|im_end|>"),
    "google-gemma-2-2b-it": ("<bos>", "<eos>"),
    "google-gemma-7b-it": ("<bos>", "<eos>"),
    "microsoft-Phi-3-mini-4k-instruct": ("<s>", "<|endoftext|>"),
    "microsoft-Phi-3.5-mini-instruct": ("<s>", "<|endoftext|>"),
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "deepseek-ai-DeepSeek-V2.5": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "HuggingFaceH4-zephyr-7b-beta": ("<s>", "</s>"),
    "teknium-OpenHermes-2.5-Mistral-7B": ("<s>", "<|im_end|>"),
    "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use": ("<|begin_of_text|>", "<|im_end|>"),
}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
CALL = {"id": "call12345", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\": \"Zürich\", \"unit\": \"celsius\"}"}}

U1 = {"role": "user", "content": "Hello! Who are you?"}
A1 = {"role": "assistant", "content": "  I am an assistant.  "}
U2 = {"role": "user", "content": "Tell me a \"quoted\" joke\nwith two lines."}
SYS = {"role": "system", "content": "You are a helpful assistant."}

CONVERSATIONS = {
    "user": [U1],
    "system_user": [SYS, U1],
    "multi_turn": [U1, A1, U2],
    "system_multi_turn": [SYS, U1, A1, U2],
    "ends_with_assistant": [SYS, U1, A1],
    "content_parts": [{"role": "user", "content": [{"type": "text", "text": "part one"}, {"type": "text", "text": "part two"}]}],
    "unicode_whitespace": [{"role": "user", "content": "\t héllo → 世界 🙂  \n"}],
    "not_alternating": [U1, U2],
    "assistant_first": [A1, U1],
    "empty_content": [{"role": "user", "content": ""}],
    "tool_round_trip": [SYS, {"role": "user", "content": "What is the weather in Zürich?"},
                        {"role": "assistant", "content": None, "tool_calls": [CALL]},
                        {"role": "tool", "tool_call_id": "call12345", "content": "{\"temperature\": 21.5}"}],
    "tool_round_trip_answered": [{"role": "user", "content": "Weather in Zürich?"},
                                 {"role": "assistant", "tool_calls": [CALL]},
                                 {"role": "tool", "tool_call_id": "call12345", "content": "sunny"},
                                 {"role": "assistant", "content": "It is sunny."},
                                 {"role": "user", "content": "Thanks"}],
}


def vllm_conversation(messages, content_as_parts):
    """vLLM's chat message parsing (string or openai content format) and its
    _postprocess_messages (tool call arguments parsed into dicts)."""
    out = []
    for m in messages:
        content = m.get("content")
        texts = [] if content is None else [content] if isinstance(content, str) else [p["text"] for p in content]
        msg = {"role": m["role"],
               "content": [{"type": "text", "text": t} for t in texts] if content_as_parts else "\n".join(texts)}
        if m["role"] == "assistant" and m.get("tool_calls") is not None:
            calls = copy.deepcopy(m["tool_calls"])
            for c in calls:
                c["function"]["arguments"] = json.loads(c["function"]["arguments"])
            msg["tool_calls"] = calls
        if m["role"] == "tool" and "tool_call_id" in m:
            msg["tool_call_id"] = m["tool_call_id"]
        if isinstance(m.get("name"), str):
            msg["name"] = m["name"]
        out.append(msg)
    return out


def vllm_tools(tools):
    """vLLM's ChatCompletionToolsParam.model_dump()."""
    if tools is None:
        return None
    return [{"type": "function", "function": {"name": t["function"]["name"],
                                              "description": t["function"].get("description"),
                                              "parameters": t["function"].get("parameters")}} for t in tools]


def _is_content_access(node) -> bool:
    while isinstance(node, (jinja2.nodes.Filter, jinja2.nodes.Test)):
        node = node.node
    if isinstance(node, jinja2.nodes.Getitem):
        return isinstance(node.arg, jinja2.nodes.Const) and node.arg.value == "content"
    return isinstance(node, jinja2.nodes.Getattr) and node.attr == "content"


def iterates_content(source: str) -> bool:
    """vLLM's content format detection: a for loop over a message's content."""
    ast = jinja2.Environment().parse(source)
    return any(_is_content_access(f.iter) for f in ast.find_all(jinja2.nodes.For))


def reference(source, bos, eos, request):
    template = _compile_jinja_template(source)
    try:
        text = template.render(
            messages=vllm_conversation(request["messages"], iterates_content(source)),
            tools=vllm_tools(request.get("tools")), documents=None,
            add_generation_prompt=request.get("add_generation_prompt", True),
            bos_token=bos, eos_token=eos, **request.get("chat_template_kwargs", {}))
        return {"ok": True, "text": text}
    except jinja2.TemplateError as e:
        raised = type(e) is jinja2.TemplateError  # raise_exception's class exactly
        return {"ok": False, "error": str(e), "raised": raised}
    except Exception as e:  # TypeError etc.: jinja2 fails, strata must fail too
        return {"ok": False, "error": f"{type(e).__name__}: {e}", "raised": False}


def requests_for(name):
    for conv_name, messages in CONVERSATIONS.items():
        for agp in (True, False):
            base = {"messages": messages, "add_generation_prompt": agp}
            yield f"{conv_name}-agp{int(agp)}", base
            if conv_name.startswith("tool") or conv_name in ("user", "system_user", "multi_turn"):
                yield f"{conv_name}-tool-agp{int(agp)}", {**base, "tools": [WEATHER_TOOL]}
                yield f"{conv_name}-tools-agp{int(agp)}", {**base, "tools": [WEATHER_TOOL, TIME_TOOL]}
        yield f"{conv_name}-kwargs", {"messages": messages,
                                      "chat_template_kwargs": {"date_string": "01 Feb 2025", "tools_in_user_message": False,
                                                               "add_vision_id": True, "unused_flag": [1, 2.5, None]}}


def strata_render(cases):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False)
        path = f.name
    try:
        out = subprocess.run([RENDER, path], capture_output=True, text=True, encoding="utf-8", timeout=120)
    finally:
        os.unlink(path)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.parametrize("name", sorted(TOKENS))
def test_template_renders_like_jinja2(name):
    source = (TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8")
    bos, eos = TOKENS[name]
    labels, cases, expected = [], [], []
    for label, request in requests_for(name):
        labels.append(label)
        cases.append({"template": source, "bos_token": bos, "eos_token": eos, "request": {"model": "m", **request}})
        expected.append(reference(source, bos, eos, request))
    got = strata_render(cases)
    assert len(got) == len(cases)
    failures = []
    for label, want, have in zip(labels, expected, got):
        if want["ok"]:
            if not have["ok"] or have["text"] != want["text"]:
                failures.append(f"{label}: jinja2 {want['text']!r}\n    strata {have.get('text', have.get('error'))!r}")
        elif have["ok"]:
            failures.append(f"{label}: jinja2 failed ({want['error']}) but strata rendered {have['text']!r}")
        elif want["raised"] and have["error"] != want["error"]:
            failures.append(f"{label}: raise_exception message {want['error']!r}, strata {have['error']!r}")
    rendered = sum(1 for w in expected if w["ok"])
    assert not failures, f"{len(failures)} of {len(cases)} cases differ:\n" + "\n".join(failures)
    assert rendered > 0
