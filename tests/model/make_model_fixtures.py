"""Writes random Llama-family checkpoints for the loader tests, with packages nobody here
wrote: numpy for the weights and a float64 reference forward pass (HF conventions:
rotate-half RoPE, q/k/v biases, Llama-3 rope scaling), `safetensors` for the files.

Each case directory holds the checkpoint(s) plus expected.json: token ids and the float64
logits at every position. The llama2.c twin of a case holds the same fp32 values in
llama2.c's layout (adjacent-pair RoPE rows), as HF's conversion script would undo.
"""
import json
import math
import os
import struct
import sys

import numpy as np
from safetensors.numpy import save_file
import safetensors


def permute_for_hf(w, n_heads):
    """llama2.c (adjacent pairs) -> HF (rotate-half) row order, as HF's converter does."""
    rows, cols = w.shape
    return w.reshape(n_heads, rows // n_heads // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def permute_bias_for_hf(b, n_heads):
    return permute_for_hf(b.reshape(-1, 1), n_heads).reshape(-1)


def rope_inv_freq(cfg):
    hd = cfg["head_dim"]
    inv = cfg["rope_theta"] ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
    sc = cfg.get("rope_scaling")
    if sc and sc["rope_type"] == "llama3":
        old = sc["original_max_position_embeddings"]
        low_wl, high_wl = old / sc["low_freq_factor"], old / sc["high_freq_factor"]
        out = []
        for f in inv:
            wl = 2 * math.pi / f
            if wl < high_wl:
                out.append(f)
            elif wl > low_wl:
                out.append(f / sc["factor"])
            else:
                s = (old / wl - sc["low_freq_factor"]) / (sc["high_freq_factor"] - sc["low_freq_factor"])
                out.append((1 - s) * f / sc["factor"] + s * f)
        inv = np.array(out)
    return inv


def reference_logits(cfg, t, tokens):
    """float64 forward over HF-layout tensors `t` (dict name -> array)."""
    d, nh, nkv, hd = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps = cfg["rms_norm_eps"]
    g = lambda name: t[name].astype(np.float64)
    n = len(tokens)
    x = g("model.embed_tokens.weight")[tokens]
    inv = rope_inv_freq(cfg)
    ang = np.arange(n)[:, None] * inv[None, :]
    cos, sin = np.cos(ang), np.sin(ang)

    def rms(v, w):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + eps) * w

    def rope(v, heads):
        v = v.reshape(n, heads, hd)
        a, b = v[..., : hd // 2], v[..., hd // 2:]
        c, s = cos[:, None, :], sin[:, None, :]
        return np.concatenate([a * c - b * s, a * s + b * c], -1)

    mask = np.triu(np.full((n, n), -np.inf), 1)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rms(x, g(p + "input_layernorm.weight"))
        q, k, v = (h @ g(p + f"self_attn.{m}_proj.weight").T for m in "qkv")
        if has_bias(cfg):
            q, k, v = q + g(p + "self_attn.q_proj.bias"), k + g(p + "self_attn.k_proj.bias"), v + g(p + "self_attn.v_proj.bias")
        q, k = rope(q, nh), rope(k, nkv)
        v = v.reshape(n, nkv, hd)
        out = np.zeros((n, nh, hd))
        for head in range(nh):
            kvh = head // (nh // nkv)
            s = q[:, head] @ k[:, kvh].T / math.sqrt(hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            out[:, head] = s @ v[:, kvh]
        x = x + out.reshape(n, nh * hd) @ g(p + "self_attn.o_proj.weight").T
        h = rms(x, g(p + "post_attention_layernorm.weight"))
        gate, up = h @ g(p + "mlp.gate_proj.weight").T, h @ g(p + "mlp.up_proj.weight").T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ g(p + "mlp.down_proj.weight").T
    head = g("model.embed_tokens.weight") if cfg["tie_word_embeddings"] else g("lm_head.weight")
    return rms(x, g("model.norm.weight")) @ head.T


def has_bias(cfg):
    """Qwen2 carries q/k/v biases without saying so in config.json."""
    return cfg.get("attention_bias", cfg["model_type"] == "qwen2")


def random_case(cfg, seed):
    """Returns (llama2.c-layout tensors, HF-layout tensors), fp32."""
    rng = np.random.default_rng(seed)
    d, f, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh, nkv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    r = lambda *shape, s=1.0, o=0.0: (o + s * rng.standard_normal(shape)).astype(np.float32)
    native, hf = {}, {}
    hf["model.embed_tokens.weight"] = native["emb"] = r(v, d)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        layer = {
            "rms_att": r(d, s=0.2, o=1.0), "wq": r(nh * hd, d, s=d ** -0.5), "wk": r(nkv * hd, d, s=d ** -0.5),
            "wv": r(nkv * hd, d, s=d ** -0.5), "wo": r(d, nh * hd, s=d ** -0.5), "rms_ffn": r(d, s=0.2, o=1.0),
            "w1": r(f, d, s=d ** -0.5), "w2": r(d, f, s=f ** -0.5), "w3": r(f, d, s=d ** -0.5),
        }
        native[l] = layer
        hf[p + "input_layernorm.weight"] = layer["rms_att"]
        hf[p + "self_attn.q_proj.weight"] = permute_for_hf(layer["wq"], nh)
        hf[p + "self_attn.k_proj.weight"] = permute_for_hf(layer["wk"], nkv)
        hf[p + "self_attn.v_proj.weight"] = layer["wv"]
        hf[p + "self_attn.o_proj.weight"] = layer["wo"]
        hf[p + "post_attention_layernorm.weight"] = layer["rms_ffn"]
        hf[p + "mlp.gate_proj.weight"] = layer["w1"]
        hf[p + "mlp.down_proj.weight"] = layer["w2"]
        hf[p + "mlp.up_proj.weight"] = layer["w3"]
        if has_bias(cfg):
            hf[p + "self_attn.q_proj.bias"] = permute_bias_for_hf(r(nh * hd, s=0.5), nh)
            hf[p + "self_attn.k_proj.bias"] = permute_bias_for_hf(r(nkv * hd, s=0.5), nkv)
            hf[p + "self_attn.v_proj.bias"] = r(nkv * hd, s=0.5)
    hf["model.norm.weight"] = native["rms_final"] = r(d, s=0.2, o=1.0)
    if not cfg["tie_word_embeddings"]:
        hf["lm_head.weight"] = native["wcls"] = r(v, d, s=d ** -0.5)
    return native, hf


def write_llama2c(cfg, native, path):
    L = cfg["num_hidden_layers"]
    vocab = cfg["vocab_size"] if cfg["tie_word_embeddings"] else -cfg["vocab_size"]
    with open(path, "wb") as out:
        out.write(struct.pack("<7i", cfg["hidden_size"], cfg["intermediate_size"], L,
                              cfg["num_attention_heads"], cfg["num_key_value_heads"], vocab,
                              cfg["max_position_embeddings"]))
        out.write(native["emb"].tobytes())
        for key in ["rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3"]:
            for l in range(L):
                out.write(native[l][key].tobytes())
        out.write(native["rms_final"].tobytes())
        out.write(np.zeros(cfg["max_position_embeddings"] * cfg["head_dim"], np.float32).tobytes())
        if not cfg["tie_word_embeddings"]:
            out.write(native["wcls"].tobytes())


def bf16_bytes(a):
    """float32 -> bfloat16 bits, round to nearest even (as torch does)."""
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16).tobytes()


def hf_config(cfg, arch):
    out = {k: v for k, v in cfg.items() if k != "head_dim"}
    out["architectures"] = [arch]
    return out


def fixture_cases():
    """name -> (HF architecture, config) of every random case."""
    return {
        "llama_gqa_untied": ("LlamaForCausalLM", dict(
            model_type="llama", hidden_size=72, intermediate_size=172, num_hidden_layers=2,
            num_attention_heads=6, num_key_value_heads=3, vocab_size=97, max_position_embeddings=64,
            rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, head_dim=12)),
        "qwen2_bias_tied": ("Qwen2ForCausalLM", dict(
            model_type="qwen2", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=8, num_key_value_heads=2, vocab_size=80, max_position_embeddings=64,
            rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True, head_dim=8)),
        "llama3_rope_scaling": ("LlamaForCausalLM", dict(
            model_type="llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, vocab_size=70, max_position_embeddings=64,
            rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=False, head_dim=16,
            rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                              high_freq_factor=4.0, original_max_position_embeddings=16))),
    }


def main():
    root = os.path.join(sys.argv[1], "models")
    os.makedirs(root, exist_ok=True)
    cases = fixture_cases()
    for i, (name, (arch, cfg)) in enumerate(cases.items()):
        native, hf = random_case(cfg, seed=100 + i)
        case_dir = os.path.join(root, name)
        os.makedirs(case_dir, exist_ok=True)
        with open(os.path.join(case_dir, "config.json"), "w") as f:
            json.dump(hf_config(cfg, arch), f, indent=1)
        save_file(hf, os.path.join(case_dir, "model.safetensors"), metadata={"format": "pt"})
        tokens = np.random.default_rng(7 + i).integers(0, cfg["vocab_size"], cfg["max_position_embeddings"])
        logits = reference_logits(cfg, hf, tokens)
        with open(os.path.join(case_dir, "expected.json"), "w") as f:
            json.dump({"tokens": tokens.tolist(), "logits": logits.tolist()}, f)
        if not has_bias(cfg) and "rope_scaling" not in cfg and cfg["rope_theta"] == 10000.0:
            write_llama2c(cfg, native, os.path.join(root, name + ".bin"))

        # The same weights in bf16, fp16, and as two shards with an index.
        for dtype in ["bf16", "fp16"]:
            d = os.path.join(root, f"{name}_{dtype}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(hf_config(cfg, arch), f, indent=1)
            if dtype == "fp16":
                save_file({k: v.astype(np.float16) for k, v in hf.items()}, os.path.join(d, "model.safetensors"))
            else:
                tensors = {k: {"dtype": "bfloat16", "shape": list(v.shape), "data": bf16_bytes(v)} for k, v in hf.items()}
                safetensors.serialize_file(tensors, os.path.join(d, "model.safetensors"))
        d = os.path.join(root, f"{name}_sharded")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(hf_config(cfg, arch), f, indent=1)
        names = sorted(hf)
        shards = [names[: len(names) // 2], names[len(names) // 2:]]
        weight_map = {}
        for s, shard in enumerate(shards):
            fname = f"model-{s + 1:05d}-of-00002.safetensors"
            save_file({k: hf[k] for k in shard}, os.path.join(d, fname))
            weight_map.update({k: fname for k in shard})
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f)


if __name__ == "__main__":
    main()
