"""Writes GGUF files for the loader tests with the `gguf` package (llama.cpp's own Python
writer, which nobody here wrote), and what they must decode to, by its dequantizers.

test-data/gguf/:
  <case>.gguf             the HF fixture case's fp32 weights, as llama.cpp's converter lays
                          them out (llama q/k rows in adjacent pairs, qwen2's as HF has them)
  <case>_<TYPE>.gguf      the same, every layer matrix and the LM head in TYPE
  <case>_<TYPE>.json      token ids and float64 logits of the weights TYPE decodes to
  quant_types.gguf        one matrix per block type, plus <TYPE>.f32: gguf's dequantized values
  <model>.gguf            the trained llama2.c models of ../shared/models (fp32), with their
                          tokenizer in GGUF metadata (tokenizer.ggml.model = llama)
  <model>_chat.gguf       the same with tokenizer.chat_template: zephyr's published template
  templates/<case>/model.gguf  vocabulary and chat-template metadata only (no tensors), for
                          the router's template discovery: zephyr (a template), llama3 (none,
                          <|start_header_id|> among the control tokens), broken (one that does
                          not parse)
  corrupt/*.gguf          truncated and corrupt files the loader must refuse (the fuzz corpus)
"""
import json
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_model_fixtures as mf  # noqa: E402

QUANT_TYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"]
K_QUANTS = {"Q4_K", "Q5_K", "Q6_K"}  # gguf-py decodes these but cannot encode them
CHAT_TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "router", "chat_templates",
                             "HuggingFaceH4-zephyr-7b-beta.jinja")


def unpermute_from_hf(w, n_heads):
    """HF rotate-half rows -> adjacent pairs, as convert_hf_to_gguf.py's LlamaModel.permute."""
    shape = w.shape
    rows = shape[0]
    return w.reshape(n_heads, 2, rows // n_heads // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def random_blocks(qtype, rows, cols, rng):
    """Valid-looking K-quant blocks: random quants, small positive fp16 scales."""
    block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    n = rows * cols // block_elems
    raw = rng.integers(0, 256, size=(n, block_bytes), dtype=np.uint8)
    scale = lambda size: (rng.uniform(0.2, 1.0, size=(n, 1)) * 2e-3).astype(np.float16).view(np.uint8)
    if qtype == Q.Q6_K:
        raw[:, 192:208] = rng.integers(-20, 20, size=(n, 16)).astype(np.int8).view(np.uint8)
        raw[:, 208:210] = scale(1)
    else:
        raw[:, 0:2] = scale(1)  # d
        raw[:, 2:4] = scale(1)  # dmin
    return raw.reshape(rows, cols // block_elems * block_bytes)


def encode(array, type_name, rng):
    """(bytes-array as stored, float32 values it decodes to) for a 2-D fp32 matrix."""
    qtype = Q[type_name]
    if type_name in K_QUANTS:
        stored = random_blocks(qtype, array.shape[0], array.shape[1], rng)
    else:
        stored = gguf.quants.quantize(array, qtype)
    return stored, gguf.quants.dequantize(stored, qtype).astype(np.float32)


# HF name -> GGUF name, as convert_hf_to_gguf.py maps them.
MODEL_NAMES = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
               "lm_head.weight": "output.weight"}
LAYER_NAMES = {"input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
               "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
               "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias",
               "self_attn.v_proj.bias": "attn_v.bias", "self_attn.o_proj.weight": "attn_output.weight",
               "post_attention_layernorm.weight": "ffn_norm.weight", "mlp.gate_proj.weight": "ffn_gate.weight",
               "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight"}


def gguf_tensors(cfg, hf):
    """GGUF tensor name -> fp32 array for an HF-layout case."""
    arch = cfg["model_type"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    names, per_layer = MODEL_NAMES, LAYER_NAMES
    out = {}
    for name, value in hf.items():
        if name.startswith("model.layers."):
            layer, rest = name[len("model.layers."):].split(".", 1)
            gname = f"blk.{layer}.{per_layer[rest]}"
            if arch == "llama" and rest.startswith(("self_attn.q_proj", "self_attn.k_proj")):
                value = unpermute_from_hf(value, nh if "q_proj" in rest else nkv)
        else:
            gname = names[name]
        out[gname] = value
    return out


def write_case(path, cfg, tensors, stored=None, tokenizer=None):
    """One llama/qwen2 GGUF; `stored` overrides tensors with (bytes, qtype) pairs."""
    arch = cfg["model_type"]
    w = gguf.GGUFWriter(path, arch)
    w.add_name(os.path.basename(path))
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(cfg["rope_theta"])
    if tokenizer:
        tokenizer(w)
    for name, value in tensors.items():
        if stored and name in stored:
            data, qtype = stored[name]
            w.add_tensor(name, data, raw_dtype=qtype)
        else:
            w.add_tensor(name, value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def rope_freq_factors(cfg):
    """llama.cpp's converter stores Llama 3.1 scaling as per-pair divisors of inv_freq."""
    plain = dict(cfg)
    plain.pop("rope_scaling")
    return (mf.rope_inv_freq(plain) / mf.rope_inv_freq(cfg)).astype(np.float32)


def to_hf_layout(cfg, tensors):
    """GGUF-named tensors back to the HF names the float64 reference reads."""
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    inverse = {v: k for k, v in MODEL_NAMES.items()}
    per_layer = {v: k for k, v in LAYER_NAMES.items()}
    hf = {}
    for name, value in tensors.items():
        if name == "rope_freqs.weight":
            continue
        if name.startswith("blk."):
            _, layer, rest = name.split(".", 2)
            if cfg["model_type"] == "llama" and rest in ("attn_q.weight", "attn_k.weight"):
                value = mf.permute_for_hf(value, nh if rest == "attn_q.weight" else nkv)
            hf[f"model.layers.{layer}.{per_layer[rest]}"] = value
        else:
            hf[inverse[name]] = value
    return hf


MIXES = {"Q8_0": lambda n: "Q8_0", "Q4_0": lambda n: "Q4_0",
         # As llama-quantize's Q4_K_M mixes them: Q6_K for ffn_down and the head.
         "KQUANTS": lambda n: "Q6_K" if "ffn_down" in n or n == "output.weight" else
         ("Q5_K" if "attn_v" in n else "Q4_K")}


def write_quantized_cases(root, name, cfg, tensors, tokens, rng, labels):
    """<case>_<LABEL>.gguf for the MIXES named, with their reference logits."""
    for label in labels:
        type_of = MIXES[label]
        stored, decoded = {}, dict(tensors)
        for tname, value in tensors.items():
            if value.ndim != 2 or tname == "token_embd.weight":
                continue
            type_name = type_of(tname)
            block = gguf.GGML_QUANT_SIZES[Q[type_name]][0]
            if value.shape[1] % block:
                continue  # stays fp32, as llama-quantize leaves rows that are not whole blocks
            data, values = encode(value, type_name, rng)
            stored[tname] = (data, Q[type_name])
            decoded[tname] = values
        write_case(os.path.join(root, f"{name}_{label}.gguf"), cfg, tensors, stored)
        logits = mf.reference_logits(cfg, to_hf_layout(cfg, decoded), tokens)
        with open(os.path.join(root, f"{name}_{label}.json"), "w") as f:
            json.dump({"tokens": tokens.tolist(), "logits": logits.tolist(),
                       "types": {k: gguf.GGMLQuantizationType(v[1]).name for k, v in stored.items()}}, f)


def write_quant_types(root, rng):
    """quant_types.gguf: one [4, 512] matrix per block type, and <TYPE>.f32 as gguf decodes it."""
    w = gguf.GGUFWriter(os.path.join(root, "quant_types.gguf"), "llama")
    for type_name in QUANT_TYPES:
        values = rng.standard_normal((4, 512)).astype(np.float32)
        stored, decoded = encode(values, type_name, rng)
        w.add_tensor(type_name, stored, raw_dtype=Q[type_name])
        decoded.tofile(os.path.join(root, type_name + ".f32"))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def read_llama2c(path):
    """(config dict, GGUF-named fp32 tensors) of a llama2.c version-0 checkpoint."""
    raw = open(path, "rb").read()
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = struct.unpack("<7i", raw[:28])
    floats = np.frombuffer(raw, dtype=np.float32, offset=28)
    hd = dim // heads
    shapes = [("token_embd.weight", (abs(vocab), dim), False), ("attn_norm.weight", (dim,), True),
              ("attn_q.weight", (heads * hd, dim), True), ("attn_k.weight", (kv_heads * hd, dim), True),
              ("attn_v.weight", (kv_heads * hd, dim), True), ("attn_output.weight", (dim, heads * hd), True),
              ("ffn_norm.weight", (dim,), True), ("ffn_gate.weight", (hidden, dim), True),
              ("ffn_down.weight", (dim, hidden), True), ("ffn_up.weight", (hidden, dim), True),
              ("output_norm.weight", (dim,), False), ("freq_cis", (seq_len * hd,), False)]
    if vocab < 0:
        shapes.append(("output.weight", (-vocab, dim), False))
    tensors, at = {}, 0
    for name, shape, per_layer in shapes:
        count = int(np.prod(shape))
        for layer in range(layers if per_layer else 1):
            value = floats[at:at + count].reshape(shape).copy()
            at += count
            if name != "freq_cis":
                tensors[f"blk.{layer}.{name}" if per_layer else name] = value
    cfg = dict(model_type="llama", hidden_size=dim, intermediate_size=hidden, num_hidden_layers=layers,
               num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=seq_len,
               rms_norm_eps=1e-5, rope_theta=10000.0)
    return cfg, tensors


def llama2c_vocab_writer(tokenizer_bin):
    """A GGUF `llama` tokenizer from a llama2.c tokenizer.bin (its pieces use ' ' for U+2581)."""
    raw = open(tokenizer_bin, "rb").read()
    at, tokens, scores = 4, [], []
    while at < len(raw):
        score, length = struct.unpack_from("<fi", raw, at)
        tokens.append(raw[at + 8:at + 8 + length].decode("utf-8", "replace").replace(" ", "\u2581"))
        scores.append(score)
        at += 8 + length

    def token_type(i, piece):
        if i == 0:
            return gguf.TokenType.UNKNOWN
        if i in (1, 2):
            return gguf.TokenType.CONTROL
        if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            return gguf.TokenType.BYTE
        return gguf.TokenType.NORMAL

    def write(w):
        w.add_tokenizer_model("llama")
        w.add_token_list(tokens)
        w.add_token_scores(scores)
        w.add_token_types([token_type(i, t) for i, t in enumerate(tokens)])
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_unk_token_id(0)
        w.add_add_bos_token(True)
    return write


def write_trained_models(root):
    shared = os.environ.get("STRATA_SHARED_DIR") or os.path.join(os.environ.get("STRATA_SOURCE_DIR", "."), "..", "shared")
    for model, tokenizer in [("stories260K", None), ("aidreams260K", "tok512.bin")]:
        folder = os.path.join(shared, "models", model)
        bins = [f for f in os.listdir(folder) if f.endswith(".bin") and not f.startswith("tok")] \
            if os.path.isdir(folder) else []
        if not bins:
            print(f"make_gguf_fixtures: {folder} is absent; its GGUF twin is not written")
            continue
        cfg, tensors = read_llama2c(os.path.join(folder, bins[0]))
        writer = llama2c_vocab_writer(os.path.join(folder, tokenizer)) if tokenizer else None
        write_case(os.path.join(root, model + ".gguf"), cfg, tensors, tokenizer=writer)
        if writer:
            write_case(os.path.join(root, model + "_chat.gguf"), cfg, tensors,
                       tokenizer=with_chat_template(writer, CHAT_TEMPLATE))


def with_chat_template(vocab_writer, template_path):
    """The vocabulary plus tokenizer.chat_template, as llama.cpp's converter stores it."""
    with open(template_path, encoding="utf-8") as f:
        source = f.read()

    def write(w):
        vocab_writer(w)
        w.add_chat_template(source)
    return write


def write_template_cases(root):
    """Metadata-only GGUFs whose vocabularies name their BOS/EOS pieces, for template lookup."""
    with open(CHAT_TEMPLATE, encoding="utf-8") as f:
        zephyr = f.read()
    cases = {
        "zephyr": (["<unk>", "<s>", "</s>", "a"], zephyr),
        "llama3": (["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|eot_id|>", "a"], None),
        "broken": (["<unk>", "<s>", "</s>", "a"], "{% for m in messages %}{{ m.content }"),
    }
    for name, (tokens, template) in cases.items():
        folder = os.path.join(root, "templates", name)
        os.makedirs(folder, exist_ok=True)
        w = gguf.GGUFWriter(os.path.join(folder, "model.gguf"), "llama")
        w.add_tokenizer_model("llama")
        w.add_token_list(tokens)
        w.add_token_scores([0.0] * len(tokens))
        w.add_token_types([gguf.TokenType.CONTROL] * (len(tokens) - 1) + [gguf.TokenType.NORMAL])
        w.add_bos_token_id(1 if name != "llama3" else 0)
        w.add_eos_token_id(2 if name != "llama3" else 1)
        if template:
            w.add_chat_template(template)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()


def header_fields(data):
    """Byte offsets of a GGUF file's header fields: [(label, offset, size)], in file order."""
    fields, at = [], 0

    def take(label, size):
        nonlocal at
        fields.append((label, at, size))
        at += size
        return data[at - size:at]

    def string(label):
        length = struct.unpack("<Q", take(label + ".length", 8))[0]
        take(label + ".bytes", length)

    scalar_sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def value(label, vtype):
        if vtype == 8:
            string(label)
        elif vtype == 9:
            etype = struct.unpack("<I", take(label + ".element_type", 4))[0]
            count = struct.unpack("<Q", take(label + ".count", 8))[0]
            for i in range(count):
                value(f"{label}[{i}]", etype)
        else:
            take(label, scalar_sizes[vtype])

    take("magic", 4)
    take("version", 4)
    n_tensors = struct.unpack("<Q", take("tensor_count", 8))[0]
    n_kv = struct.unpack("<Q", take("kv_count", 8))[0]
    for i in range(n_kv):
        string(f"kv{i}.key")
        vtype = struct.unpack("<I", take(f"kv{i}.type", 4))[0]
        value(f"kv{i}.value", vtype)
    for i in range(n_tensors):
        string(f"tensor{i}.name")
        dims = struct.unpack("<I", take(f"tensor{i}.dims", 4))[0]
        for d in range(dims):
            take(f"tensor{i}.extent{d}", 8)
        take(f"tensor{i}.type", 4)
        take(f"tensor{i}.offset", 8)
    return fields


def write_corrupt(root, valid_path):
    """corrupt/*.gguf and manifest.json: {file: text the error must contain}."""
    out = os.path.join(root, "corrupt")
    os.makedirs(out, exist_ok=True)
    data = open(valid_path, "rb").read()
    fields = {label: (offset, size) for label, offset, size in header_fields(data)}
    manifest = {}

    def emit(name, blob, expect):
        with open(os.path.join(out, name + ".gguf"), "wb") as f:
            f.write(blob)
        manifest[name + ".gguf"] = expect

    def patched(label, fmt, value):
        offset, _ = fields[label]
        return data[:offset] + struct.pack(fmt, value) + data[offset + struct.calcsize(fmt):]

    # Truncated inside every kind of header field.
    for label in ["magic", "version", "tensor_count", "kv_count", "kv0.key.length", "kv0.key.bytes",
                  "kv0.type", "kv0.value.length", "tensor0.name.length", "tensor0.dims",
                  "tensor0.extent0", "tensor0.type", "tensor0.offset"]:
        offset, size = fields[label]
        emit("truncated_in_" + label.replace(".", "_"), data[:offset + size // 2], "not a valid GGUF file")
    emit("empty", b"", "shorter than the 4-byte magic")
    emit("bad_magic", b"GGUX" + data[4:], "magic is not")
    emit("version_1", patched("version", "<I", 1), "version 1 is not supported")
    emit("version_4", patched("version", "<I", 4), "version 4 is not supported")
    emit("huge_tensor_count", patched("tensor_count", "<Q", 1 << 60), "cannot fit in the file")
    emit("huge_kv_count", patched("kv_count", "<Q", 1 << 60), "cannot fit in the file")
    emit("huge_string_length", patched("kv0.key.length", "<Q", 1 << 62), "runs past the end of the file")
    emit("huge_tensor_name_length", patched("tensor0.name.length", "<Q", (1 << 64) - 1), "runs past the end")
    emit("unknown_value_type", patched("kv0.type", "<I", 99), "unknown value type 99")
    emit("unknown_tensor_type", patched("tensor0.type", "<I", 99), "ggml type 99")
    emit("zero_dims", patched("tensor0.dims", "<I", 0), "has 0 dimensions")
    emit("five_dims", patched("tensor0.dims", "<I", 5), "has 5 dimensions")
    emit("zero_extent", patched("tensor0.extent0", "<Q", 0), "dimension 0 is 0")
    emit("huge_extent", patched("tensor0.extent0", "<Q", 1 << 39), "more than the whole file")
    emit("misaligned_offset", patched("tensor1.offset", "<Q", 4), "not a multiple of the alignment")
    second_offset = struct.unpack_from("<Q", data, fields["tensor1.offset"][0])[0]
    emit("overlapping_tensors", patched("tensor1.offset", "<Q", 0) if second_offset else data, "overlap")
    emit("tensor_past_eof", data[:len(data) - 64], "runs past the end of the file")
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


def main():
    root = os.path.join(sys.argv[1], "gguf")
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(20261202)
    cases = {"llama_gqa_untied": 100, "qwen2_bias_tied": 101, "llama3_rope_scaling": 102}
    configs = mf.fixture_cases()
    for name, seed in cases.items():
        arch, cfg = configs[name]
        _, hf = mf.random_case(cfg, seed=seed)
        tensors = gguf_tensors(cfg, hf)
        if "rope_scaling" in cfg:
            tensors["rope_freqs.weight"] = rope_freq_factors(cfg)
        write_case(os.path.join(root, name + ".gguf"), cfg, tensors)
        if name != "llama_gqa_untied":  # its hidden size (72) is not a whole number of blocks
            tokens = rng.integers(0, cfg["vocab_size"], 24)
            write_quantized_cases(root, name, cfg, tensors, tokens, rng, ["Q8_0", "Q4_0"])
    kcfg = dict(model_type="llama", hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, vocab_size=64, max_position_embeddings=32,
                rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, head_dim=64)
    _, hf = mf.random_case(kcfg, seed=103)
    write_quantized_cases(root, "llama_kquants", kcfg, gguf_tensors(kcfg, hf), rng.integers(0, 64, 16), rng, ["KQUANTS"])
    write_quant_types(root, rng)
    write_trained_models(root)
    write_template_cases(root)
    write_corrupt(root, os.path.join(root, "qwen2_bias_tied.gguf"))


if __name__ == "__main__":
    main()
