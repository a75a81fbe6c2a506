#!/usr/bin/env python3
"""Writes reference tokenizations for the tokenizer tests into <test-data>/tokenizer/.

The references come from packages nobody here wrote: `sentencepiece` (Llama 2 vocabulary),
`transformers` (tokenizer.model -> tokenizer.json conversion) and `tokenizers` (trains small
BPE tokenizers of three styles). A missing shared file skips only the cases that need it.
"""
import json
import os
import sys
from pathlib import Path

source_dir = Path(os.environ.get("STRATA_SOURCE_DIR", Path(__file__).resolve().parents[2]))
shared_dir = Path(os.environ.get("STRATA_SHARED_DIR") or source_dir / ".." / "shared")
out_dir = Path(sys.argv[1]) / "tokenizer"
out_dir.mkdir(parents=True, exist_ok=True)
corpus_dir = Path(__file__).resolve().parent / "corpus"


def read_lines(name):
    return (corpus_dir / name).read_text(encoding="utf-8").split("\n")


def write_json(name, obj):
    (out_dir / name).write_text(json.dumps(obj, ensure_ascii=False, indent=1), encoding="utf-8")


def llama2_cases():
    model = shared_dir / "models" / "llama2-tokenizer" / "tokenizer.model"
    if not model.exists():
        print(f"skipping Llama 2 references: {model} not found", file=sys.stderr)
        return
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=str(model))
    multilingual = (corpus_dir / "multilingual.txt").read_text(encoding="utf-8")
    texts = [line for line in multilingual.split("\n") if line] + [multilingual]
    write_json("llama2_sentencepiece.json", {"cases": [
        {"text": t, "ids": sp.encode(t), "decoded": sp.decode(sp.encode(t))} for t in texts]})

    # legacy=True converts to a Prepend/Replace normalizer (matches sentencepiece exactly);
    # legacy=False to a Metaspace pre-tokenizer (HF's own ids are the reference there).
    from transformers import LlamaTokenizer
    from transformers.convert_slow_tokenizer import convert_slow_tokenizer
    for legacy in (True, False):
        backend = convert_slow_tokenizer(LlamaTokenizer(str(model), legacy=legacy))
        sub = out_dir / f"llama2_hf_legacy_{str(legacy).lower()}"
        sub.mkdir(exist_ok=True)
        backend.save(str(sub / "tokenizer.json"))
        write_json(f"llama2_hf_legacy_{str(legacy).lower()}.json", {"cases": [
            {"text": t, "ids": backend.encode(t).ids,
             "decoded": backend.decode(backend.encode(t).ids, skip_special_tokens=True)}
            for t in texts]})


def trained_cases():
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from tokenizers import Regex, processors
    train = [line for line in read_lines("train.txt") if line]
    heldout = read_lines("heldout.txt")
    heldout_texts = heldout + ["\n".join(heldout)]
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

    def byte_level():
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        return tok, trainer

    def llama3_split():
        pattern = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                   r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
        tok = Tokenizer(models.BPE(ignore_merges=True))
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=["<|begin_of_text|>",
                                      "<|end_of_text|>", "<|eot_id|>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        return tok, trainer

    def sentencepiece_style():
        tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
        tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Prepend("▁"),
                                               normalizers.Replace(" ", "▁")])
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                         decoders.Fuse(), decoders.Strip(" ", 1, 0)])
        byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
        trainer = trainers.BpeTrainer(vocab_size=1500, special_tokens=["<unk>", "<s>", "</s>"] +
                                      byte_tokens, limit_alphabet=200)
        return tok, trainer

    def metaspace_digits():
        tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True),
            pre_tokenizers.Digits(individual_digits=True)])
        tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(
            replacement="▁", prepend_scheme="first", split=True)])
        byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
        trainer = trainers.BpeTrainer(vocab_size=900, special_tokens=["<unk>", "<s>", "</s>"] +
                                      byte_tokens, limit_alphabet=150)
        return tok, trainer

    for name, make in [("bytelevel", byte_level), ("llama3_split", llama3_split),
                       ("sentencepiece_style", sentencepiece_style),
                       ("metaspace_digits", metaspace_digits)]:
        tok, trainer = make()
        tok.train_from_iterator(train, trainer=trainer)
        if name == "sentencepiece_style":
            tok.post_processor = processors.TemplateProcessing(
                single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
        if name == "llama3_split":
            tok.post_processor = processors.TemplateProcessing(
                single="<|begin_of_text|> $A",
                special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])
        tok.save(str(out_dir / f"{name}.tokenizer.json"))
        cases = []
        for text in heldout_texts:
            for add_special in (False, True):
                ids = tok.encode(text, add_special_tokens=add_special).ids
                cases.append({"text": text, "add_special_tokens": add_special, "ids": ids,
                              "decoded": tok.decode(ids, skip_special_tokens=False),
                              "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)})
        write_json(f"{name}.cases.json", {"cases": cases})


llama2_cases()
trained_cases()
