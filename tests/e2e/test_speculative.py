"""Speculative decoding through the whole path: a real router and worker serving the trained
aidreams260K model with each proposer. Greedy completions, streamed and not, carry the very
tokens of a server without speculation; /metrics counts drafts proposed and accepted; a
request can opt out; and `strata bench` reports the acceptance it read from /metrics."""
from __future__ import annotations

import json
import subprocess

import openai
import pytest

from conftest import AIDREAMS, BIN, metric_value, require_file

PROMPTS = ["Once upon a time, there was a little girl named Lily.",
           "Lily ran. Lily ran. Lily ran. Lily ran. Lily",
           "The dog said hello. The dog said hello. The cat said"]


def completions(server, stream: bool = False, extra: dict | None = None) -> list:
    client = openai.OpenAI(base_url=server.url("/v1"), api_key="x", max_retries=0, timeout=60)
    model = client.models.list().data[0].id
    out = []
    for prompt in PROMPTS:
        body = {"ignore_eos": True, "return_token_ids": True, **(extra or {})}
        kwargs = dict(model=model, prompt=prompt, max_tokens=24, temperature=0, extra_body=body)
        if not stream:
            out.append(client.completions.create(**kwargs).choices[0].token_ids)
            continue
        ids = []
        for chunk in client.completions.create(stream=True, **kwargs):
            ids += chunk.choices[0].token_ids or []
        out.append(ids)
    return out


@pytest.fixture(scope="module")
def reference(request):
    """Greedy ids from a server without speculation."""
    from conftest import StrataServer
    with StrataServer(str(require_file(AIDREAMS))) as server:
        return completions(server)


@pytest.mark.parametrize("method", ["ngram", "self-quantized"])
def test_greedy_output_is_unchanged_and_drafts_are_counted(server_factory, reference, method):
    server = server_factory(str(require_file(AIDREAMS)),
                            worker_args=["--speculative-method", method, "--num-speculative-tokens", "3",
                                         "--no-speculative-governor"])
    assert completions(server) == reference
    assert completions(server, stream=True) == reference
    text = server.metrics()
    labels = 'group="g0"'
    drafts = metric_value(text, "strata_spec_decode_draft_tokens_total", labels)
    accepted = metric_value(text, "strata_spec_decode_accepted_tokens_total", labels)
    verifications = metric_value(text, "strata_spec_decode_verifications_total", labels)
    assert drafts > 0 and 0 < accepted <= drafts, text
    assert verifications <= drafts <= 3 * verifications
    assert metric_value(text, "strata_spec_decode_acceptance_rate", labels) == pytest.approx(accepted / drafts)
    assert metric_value(text, "strata_spec_decode_mean_accepted_length", labels) == pytest.approx(
        1 + accepted / verifications)


def test_opted_out_requests_run_no_drafts(server_factory, reference):
    server = server_factory(str(require_file(AIDREAMS)), worker_args=["--speculative-method", "ngram"])
    assert completions(server, extra={"speculative": False}) == reference
    assert metric_value(server.metrics(), "strata_spec_decode_draft_tokens_total", 'group="g0"') == 0


def test_bad_settings_fail_at_startup_naming_the_flag(tmp_path):
    out = subprocess.run([str(BIN / "strata-worker"), "--model", "builtin:tiny", "--router", "ipc:///nonexistent",
                          "--speculative-method", "draft"], capture_output=True, timeout=60)
    assert out.returncode != 0
    assert b"--speculative-model" in out.stderr + out.stdout


def test_bench_reports_acceptance_from_metrics(server_factory, tmp_path):
    server = server_factory(str(require_file(AIDREAMS)), worker_args=["--speculative-method", "self-quantized",
                                                                          "--no-speculative-governor"])
    out = subprocess.run(
        [str(BIN / "strata"), "bench", "--url", server.url(""), "--concurrency", "2", "--num-requests", "6",
         "--input-tokens", "16", "--output-tokens", "24", "--output-json", str(tmp_path / "b.json")],
        capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode()
    assert "acceptance" in out.stdout.decode(), out.stdout.decode()
    point = json.loads((tmp_path / "b.json").read_text())["load_points"][0]
    assert point["server"]["spec_draft_tokens"] > 0
    assert 0 < point["server"]["spec_acceptance_rate"] <= 1
