"""Prefix caching through the whole path: a real router and worker serving the trained
aidreams260K model, driven by the `openai` client. A multi-turn conversation (each turn
resends everything so far) reports its reused prefix as
`usage.prompt_tokens_details.cached_tokens` and in /metrics, and produces the very tokens
of a server that recomputes every prompt (--no-prefix-caching)."""
from __future__ import annotations

import json
import subprocess
import sys

import openai

from conftest import AIDREAMS, SOURCE_DIR, metric_value, require_file

BLOCK_SIZE = 16  # the worker's default --block-size
OPENING = "Once upon a time, there was a little girl named Lily. She loved to play outside."
TURNS = [" Lily ran.", " Then mom called.", " The sun set.", " Lily slept."]


def converse(server) -> list:
    """Runs the conversation greedily; returns (token ids, usage) per turn."""
    client = openai.OpenAI(base_url=server.url("/v1"), api_key="x", max_retries=0, timeout=60)
    model = client.models.list().data[0].id
    prompt, turns = OPENING, []
    for turn in TURNS:
        prompt += turn
        r = client.completions.create(model=model, prompt=prompt, max_tokens=8, temperature=0,
                                      extra_body={"ignore_eos": True, "return_token_ids": True})
        turns.append((r.choices[0].token_ids, r.usage))
        prompt += r.choices[0].text
    return turns


def test_conversation_reuses_its_prefix_and_matches_recomputing(server_factory):
    model = str(require_file(AIDREAMS))
    cached = converse(server_factory(model))
    recomputed = converse(server_factory(model, worker_args=["--no-prefix-caching"]))

    assert [ids for ids, _ in cached] == [ids for ids, _ in recomputed]
    assert [u.prompt_tokens for _, u in cached] == [u.prompt_tokens for _, u in recomputed]
    assert all(u.prompt_tokens_details.cached_tokens == 0 for _, u in recomputed)
    assert cached[0][1].prompt_tokens_details.cached_tokens == 0
    assert cached[-1][1].prompt_tokens_details.cached_tokens >= 3 * BLOCK_SIZE
    for (_, before), (_, usage) in zip(cached, cached[1:]):
        hit = usage.prompt_tokens_details.cached_tokens
        assert hit % BLOCK_SIZE == 0 and hit < usage.prompt_tokens
        # Everything the previous turn computed, but for re-tokenization at the seam and the
        # partial last block.
        assert hit >= before.prompt_tokens - 2 * BLOCK_SIZE, (hit, before.prompt_tokens)


def test_metrics_count_queries_and_hits(server_factory):
    server = server_factory(str(require_file(AIDREAMS)))
    turns = converse(server)
    text = server.metrics()
    labels = 'group="g0"'
    hits = metric_value(text, "strata_prefix_cache_hits_total", labels)
    queries = metric_value(text, "strata_prefix_cache_queries_total", labels)
    assert hits == sum(u.prompt_tokens_details.cached_tokens for _, u in turns)
    # The worker's 4-token warm-up request is looked up too.
    assert queries == 4 + sum(u.prompt_tokens for _, u in turns)
    assert metric_value(text, "strata_prefix_cache_hit_rate", labels) == hits / queries
    assert metric_value(text, "strata_kv_blocks_cached", labels) > 0
    assert metric_value(text, "strata_prefix_cache_evictions_total", labels) == 0


def test_streamed_usage_reports_cached_tokens(server_factory):
    server = server_factory(str(require_file(AIDREAMS)))
    client = openai.OpenAI(base_url=server.url("/v1"), api_key="x", max_retries=0, timeout=60)
    model = client.models.list().data[0].id
    kwargs = dict(model=model, prompt=OPENING * 2, max_tokens=4, temperature=0)
    first = client.completions.create(**kwargs)
    usage = None
    for chunk in client.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs):
        usage = chunk.usage or usage
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert usage.prompt_tokens == first.usage.prompt_tokens
    assert usage.prompt_tokens_details.cached_tokens == (usage.prompt_tokens - 1) // BLOCK_SIZE * BLOCK_SIZE


def test_multiturn_benchmark_sees_each_turn_resent_from_the_cache(server_factory, tmp_path):
    """tools/bench_multiturn.py against builtin:tiny: from turn 2 on, everything but the new
    message (to a block boundary) comes from the cache."""
    server = server_factory("builtin:tiny")
    out = tmp_path / "turns.json"
    subprocess.run([sys.executable, str(SOURCE_DIR / "tools" / "bench_multiturn.py"), "--url", server.url(""),
                    "--conversations", "2", "--turns", "3", "--system-tokens", "32", "--turn-tokens", "16",
                    "--output-tokens", "4", "--json", str(out)], check=True, timeout=120)
    turns = json.loads(out.read_text())["turns"]
    assert [t["turn"] for t in turns] == [1, 2, 3]
    assert turns[0]["cached_tokens"] == [0, 32], "the second conversation shares the system prompt"
    for before, turn in zip(turns, turns[1:]):
        # The previous turn computed its prompt and all but the last of its 4 answer tokens.
        assert turn["cached_tokens"] == [(before["prompt_tokens"] + 3) // BLOCK_SIZE * BLOCK_SIZE] * 2
