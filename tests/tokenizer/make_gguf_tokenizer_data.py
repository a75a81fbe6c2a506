#!/usr/bin/env python3
"""Writes GGUF tokenizer files and their reference tokenizations into <test-data>/gguf_tokenizer/.

The files are written with the `gguf` package (llama.cpp's own writer); the references come
from packages nobody here wrote: `sentencepiece` (the Llama 2 tokenizer.model, converted
into GGUF arrays as llama.cpp's convert script does) and `tokenizers` (small byte-level BPE
tokenizers trained here, one per pre-tokenizer style, whose vocab and merges go into GGUF).
It also writes broken GGUF files, each with the words its error message must contain.
"""
import json
import os
import shutil
import sys
from pathlib import Path

import gguf

source_dir = Path(os.environ.get("STRATA_SOURCE_DIR", Path(__file__).resolve().parents[2]))
shared_dir = Path(os.environ.get("STRATA_SHARED_DIR") or source_dir / ".." / "shared")
out_dir = Path(sys.argv[1]) / "gguf_tokenizer"
shutil.rmtree(out_dir, ignore_errors=True)
out_dir.mkdir(parents=True)
corpus_dir = Path(__file__).resolve().parent / "corpus"

# Regexes of llama.cpp's pre-tokenizer types (llama-vocab.cpp), in HF's spelling where HF
# models use them (llama3 and qwen2 tokenizer.json files have (?i:...)).
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
          r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
         r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
DEFAULT = [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"]

SPECIALS = ["<|endoftext|>", "<|begin_of_text|>", "<|im_start|>", "<|im_end|>"]
USER_DEFINED = ["<custom_tool>"]


def read_text(name):
    return (corpus_dir / name).read_text(encoding="utf-8")


def test_texts():
    multilingual = read_text("multilingual.txt")
    heldout = read_text("heldout.txt")
    texts = [line for line in multilingual.split("\n") if line] + [multilingual]
    texts += [line for line in heldout.split("\n") if line] + [heldout]
    texts += ["", " ", "  ", "\n", "\n\n  \t ", "a  b   c    d", "   leading", "trailing   ",
              "emoji 🤖🦙 and 👩🏽‍🚀", "tab\tand\r\nCRLF", "ＦＵＬＬ ｗｉｄｔｈ", "x" * 300]
    return texts


def chat_texts():
    return ["<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi there!"
            "<|im_end|>\n<|im_start|>assistant\n",
            "<|begin_of_text|>Hello<|endoftext|>",
            "text <|im_end|><|im_start|> text",
            "call <custom_tool> now<custom_tool>",
            "<|im_start|><|im_start|>", "almost <|im_start| special"]


def write_json(name, obj):
    (out_dir / name).write_text(json.dumps(obj, ensure_ascii=False, indent=1), encoding="utf-8")


def new_writer(path):
    writer = gguf.GGUFWriter(str(path), arch="llama")
    return writer


def finish(writer):
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


# --- llama (SentencePiece) -----------------------------------------------------------------

def sentencepiece_arrays(model_path):
    from sentencepiece import sentencepiece_model_pb2 as pb
    proto = pb.ModelProto()
    proto.ParseFromString(model_path.read_bytes())
    # ModelProto's piece types (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
    # 6 byte) are GGUF's token_type values; convert_hf_to_gguf.py copies them as they are.
    pieces = [p.piece for p in proto.pieces]
    scores = [p.score for p in proto.pieces]
    types = [p.type for p in proto.pieces]
    return pieces, scores, types, proto.normalizer_spec.add_dummy_prefix


def write_llama():
    model = shared_dir / "models" / "llama2-tokenizer" / "tokenizer.model"
    if not model.exists():
        print(f"skipping the GGUF llama references: {model} not found", file=sys.stderr)
        return
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=str(model))
    pieces, scores, types, add_dummy_prefix = sentencepiece_arrays(model)
    writer = new_writer(out_dir / "llama.gguf")
    writer.add_tokenizer_model("llama")
    writer.add_token_list(pieces)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(sp.bos_id())
    writer.add_eos_token_id(sp.eos_id())
    writer.add_unk_token_id(sp.unk_id())
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(add_dummy_prefix)
    finish(writer)
    cases = []
    for text in test_texts():
        ids = sp.encode(text)
        cases.append({"text": text, "ids": ids, "ids_with_bos": [sp.bos_id()] + ids,
                      "decoded": sp.decode(ids)})
    write_json("llama.cases.json", {"bos": sp.bos_id(), "eos": sp.eos_id(),
                                    "vocab_size": len(pieces), "cases": cases})


# --- gpt2 (byte-level BPE) -----------------------------------------------------------------

def train_bpe(regexes, use_byte_level_regex, ignore_merges):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if use_byte_level_regex:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        splits = [pre_tokenizers.Split(Regex(r), behavior="isolated", invert=False)
                  for r in regexes]
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            splits + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    train = [line for line in read_text("train.txt").split("\n") if line]
    tok.train_from_iterator(train, trainer=trainer)
    tok.add_tokens(USER_DEFINED)
    return tok


def gguf_arrays(tok):
    """tokens, token types and merges as convert_hf_to_gguf.py writes them."""
    data = json.loads(tok.to_str())
    vocab = tok.get_vocab(with_added_tokens=True)
    tokens = [None] * len(vocab)
    for piece, i in vocab.items():
        tokens[i] = piece
    types = [1] * len(tokens)
    for added in data["added_tokens"]:
        types[added["id"]] = 3 if added["special"] else 4
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    return tokens, types, merges


def write_bpe_variant(name, pre, tok, add_bos):
    tokens, types, merges = gguf_arrays(tok)
    bos = tok.token_to_id("<|begin_of_text|>")
    eos = tok.token_to_id("<|endoftext|>")
    writer = new_writer(out_dir / f"{name}.gguf")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(bos)
    writer.add_eos_token_id(eos)
    writer.add_eot_token_id(tok.token_to_id("<|im_end|>"))
    writer.add_pad_token_id(eos)
    writer.add_add_bos_token(add_bos)
    finish(writer)
    cases = []
    for text in test_texts() + chat_texts():
        ids = tok.encode(text, add_special_tokens=False).ids
        cases.append({"text": text, "ids": ids,
                      "ids_with_bos": ([bos] if add_bos else []) + ids,
                      "decoded": tok.decode(ids, skip_special_tokens=False),
                      "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)})
    write_json(f"{name}.cases.json", {"bos": bos, "eos": eos, "vocab_size": len(tokens),
                                      "stop_ids": [eos, tok.token_to_id("<|im_end|>")],
                                      "cases": cases})
    return tokens, types, merges


def write_bpe():
    variants = [  # (file name, tokenizer.ggml.pre, regexes, ByteLevel's own regex, ignore_merges)
        ("gpt2", "gpt2", None, True, False),
        ("default", "default", DEFAULT, False, False),
        ("llama_bpe", "llama-bpe", [LLAMA3], False, True),
        ("qwen2", "qwen2", [QWEN2], False, False),
        ("smaug_bpe", "smaug-bpe", [LLAMA3], False, False),
    ]
    arrays = None
    for name, pre, regexes, byte_level_regex, ignore_merges in variants:
        tok = train_bpe(regexes, byte_level_regex, ignore_merges)
        result = write_bpe_variant(name, pre, tok, add_bos=(pre == "llama-bpe"))
        arrays = arrays or result
    return arrays


# --- broken files --------------------------------------------------------------------------

def write_errors(arrays):
    tokens, types, merges = arrays
    errors = []

    def broken(name, expect, **fields):
        writer = new_writer(out_dir / "errors" / f"{name}.gguf")
        if "model" in fields:
            writer.add_tokenizer_model(fields["model"])
        if "pre" in fields:
            writer.add_tokenizer_pre(fields["pre"])
        if "tokens" in fields:
            writer.add_token_list(fields["tokens"])
        if "scores" in fields:
            writer.add_token_scores(fields["scores"])
        if "types" in fields:
            writer.add_token_types(fields["types"])
        if "merges" in fields:
            writer.add_token_merges(fields["merges"])
        if "bos" in fields:
            writer.add_bos_token_id(fields["bos"])
        finish(writer)
        errors.append({"file": f"errors/{name}.gguf", "expect": expect})

    (out_dir / "errors").mkdir()
    small = ["<unk>", "<s>", "</s>", "a", "b", "ab"]
    broken("no_model", ["tokenizer.ggml.model", "missing"], tokens=small)
    broken("no_tokens", ["tokenizer.ggml.tokens", "missing"], model="llama",
           scores=[0.0] * 6)
    broken("no_scores", ["tokenizer.ggml.scores", "missing"], model="llama", tokens=small)
    broken("short_scores", ["tokenizer.ggml.scores", "5 entries", "6"], model="llama",
           tokens=small, scores=[0.0] * 5)
    broken("short_types", ["tokenizer.ggml.token_type", "7 entries", "6"], model="llama",
           tokens=small, scores=[0.0] * 6, types=[1] * 7)
    broken("unknown_model", ["tokenizer.ggml.model", "\"wordpiece-x\""], model="wordpiece-x",
           tokens=small)
    broken("unknown_pre", ["tokenizer.ggml.pre", "\"no-such-pre\"", "llama-bpe", "qwen2"],
           model="gpt2", pre="no-such-pre", tokens=tokens, types=types, merges=merges)
    broken("bos_out_of_range", ["tokenizer.ggml.bos_token_id", "99999", "0..5"],
           model="llama", tokens=small, scores=[0.0] * 6, bos=99999)
    broken("gpt2_bos_out_of_range", ["tokenizer.ggml.bos_token_id", str(len(tokens)),
                                     f"0..{len(tokens) - 1}"],
           model="gpt2", pre="gpt2", tokens=tokens, types=types, merges=merges, bos=len(tokens))
    broken("no_merges", ["tokenizer.ggml.merges", "missing"], model="gpt2", pre="gpt2",
           tokens=tokens, types=types)
    broken("bad_merge", ["tokenizer.ggml.merges", "[1]", "zz qq"], model="gpt2", pre="gpt2",
           tokens=tokens, types=types, merges=[merges[0], "zz qq"])
    broken("tokens_not_strings", ["tokenizer.ggml.tokens", "array of strings"], model="llama",
           tokens=[1, 2, 3], scores=[0.0] * 3)
    write_json("errors.json", {"cases": errors})


write_llama()
write_errors(write_bpe())
