#!/usr/bin/env python3
"""Writes a random-weight F16 GGUF of a Llama shape for llama.cpp, the baseline strata's
benchmarks compare with (docs/benchmarks.md). The default shape is builtin:llama-1b
(TinyLlama-1.1B): what strata's `bench_model --model builtin:llama-1b` runs. Weights are
N(0, 0.02) like the builtin models'; speed does not depend on their values. Quantize the
result with llama.cpp's own `llama-quantize` (Q8_0, Q4_0) so its formats are its own.

    python3 tools/baselines/random_llama_gguf.py /tmp/llama1b-f16.gguf
Needs the `gguf` and `numpy` packages (pip install gguf==0.16.3 numpy==1.26.4).
"""
from __future__ import annotations

import argparse

import gguf
import numpy as np


def vocabulary(size: int):
    """A SentencePiece-style vocabulary llama.cpp loads: unk, BOS, EOS, 256 byte tokens, the
    rest plain pieces. llama-bench feeds random ids, so the pieces' text does not matter."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"\u2581piece{i}" for i in range(size - len(tokens))]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    types += [gguf.TokenType.BYTE] * 256 + [gguf.TokenType.NORMAL] * (size - 259)
    return tokens, [0.0] * size, types


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--ffn", type=int, default=5632)
    ap.add_argument("--layers", type=int, default=22)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--context", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    head_dim = a.dim // a.heads

    def matrix(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float16)

    w = gguf.GGUFWriter(a.out, "llama")
    w.add_name("random-llama")
    w.add_context_length(a.context)
    w.add_embedding_length(a.dim)
    w.add_block_count(a.layers)
    w.add_feed_forward_length(a.ffn)
    w.add_head_count(a.heads)
    w.add_head_count_kv(a.kv_heads)
    w.add_rope_dimension_count(head_dim)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    tokens, scores, types = vocabulary(a.vocab)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    ones = np.ones(a.dim, dtype=np.float32)
    w.add_tensor("token_embd.weight", matrix(a.vocab, a.dim))
    for layer in range(a.layers):
        p = f"blk.{layer}."
        w.add_tensor(p + "attn_norm.weight", ones)
        w.add_tensor(p + "attn_q.weight", matrix(a.dim, a.dim))
        w.add_tensor(p + "attn_k.weight", matrix(a.kv_heads * head_dim, a.dim))
        w.add_tensor(p + "attn_v.weight", matrix(a.kv_heads * head_dim, a.dim))
        w.add_tensor(p + "attn_output.weight", matrix(a.dim, a.dim))
        w.add_tensor(p + "ffn_norm.weight", ones)
        w.add_tensor(p + "ffn_gate.weight", matrix(a.ffn, a.dim))
        w.add_tensor(p + "ffn_up.weight", matrix(a.ffn, a.dim))
        w.add_tensor(p + "ffn_down.weight", matrix(a.dim, a.ffn))
    w.add_tensor("output_norm.weight", ones)
    w.add_tensor("output.weight", matrix(a.vocab, a.dim))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
