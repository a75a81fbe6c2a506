// Encoding, as llama.cpp's llama_vocab::impl::tokenize for SPM: control, unknown and
// user-defined tokens are split out of the text first; each remaining fragment gets a "▁"
// prefix when add_space_prefix holds and it starts the text or follows such a token, has
// its spaces replaced by "▁", and is merged by score (ScoreBpe: the same algorithm as
// run.c, with byte fallback through the "<0xXX>" tokens).
//
// Decoding, as `sentencepiece`: control and unknown tokens vanish (or show their text when
// specials are kept), byte tokens give their byte, "▁" becomes a space, and the first
// piece that is not a vanished control token loses one leading space (the dummy prefix).
#include "common/tokenizer/gguf_spm_tokenizer.h"

#include <cstdio>

#include "common/tokenizer/score_bpe.h"
#include "common/utf8.h"

namespace strata::gguf_tok {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

std::string escape_spaces(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (char c : text) {
    if (c == ' ') {
      out += kSpace;
    } else {
      out += c;
    }
  }
  return out;
}

std::string unescape_spaces(std::string_view piece) {
  std::string out;
  for (size_t pos = 0; pos < piece.size();) {
    if (piece.compare(pos, kSpace.size(), kSpace) == 0) {
      out += ' ';
      pos += kSpace.size();
    } else {
      out += piece[pos++];
    }
  }
  return out;
}

// "<0xAB>" -> 0xAB; nullopt for any other text.
std::optional<uint8_t> parse_byte_piece(const std::string& piece) {
  unsigned int byte = 0;
  char tail = 0;
  if (piece.size() == 6 && std::sscanf(piece.c_str(), "<0x%02X%c", &byte, &tail) == 2 &&
      tail == '>') {
    return static_cast<uint8_t>(byte);
  }
  return std::nullopt;
}

// llama.cpp's byte_to_token: "<0xXX>", else the byte as a one-character token; unknown
// when neither exists (llama.cpp would throw), else the byte is dropped.
std::array<int32_t, 256> byte_ids(const GgufVocab& vocab) {
  std::array<int32_t, 256> ids{};
  for (int b = 0; b < 256; ++b) {
    auto it = vocab.ids.find(fmt::format("<0x{:02X}>", b));
    if (it == vocab.ids.end()) it = vocab.ids.find(std::string(1, static_cast<char>(b)));
    ids[b] = it != vocab.ids.end() ? it->second : vocab.unk_id.value_or(-1);
  }
  return ids;
}

class SpmTokenizer final : public GgufTokenizerBase {
 public:
  SpmTokenizer(GgufVocab vocab, bool add_space_prefix)
      : GgufTokenizerBase(std::move(vocab)),
        bpe_(vocab_.tokens, vocab_.scores, byte_ids(vocab_)),
        added_(vocab_.added_tokens()),
        add_space_prefix_(add_space_prefix) {}

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override;
  std::string_view kind() const override { return "gguf-llama"; }

 private:
  ScoreBpe bpe_;
  AddedTokenMatcher added_;
  bool add_space_prefix_;
};

std::vector<int32_t> SpmTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  if (add_special_tokens && vocab_.add_bos) ids.push_back(*vocab_.bos_id);
  std::vector<Segment> segments{{std::string(text), -1, true}};
  added_.split(segments, /*normalized=*/false);
  bool after_special = true;  // the text's start counts as following a special token
  std::vector<int32_t> symbols;
  for (const Segment& segment : segments) {
    if (segment.added_id >= 0) {
      ids.push_back(segment.added_id);
      after_special = true;
      continue;
    }
    if (segment.text.empty()) continue;
    const std::string prefixed =
        add_space_prefix_ && after_special ? " " + segment.text : segment.text;
    symbols.clear();
    bpe_.append_symbols(escape_spaces(prefixed), symbols);
    bpe_.merge(symbols);
    ids.insert(ids.end(), symbols.begin(), symbols.end());
    after_special = false;
  }
  if (add_special_tokens && vocab_.add_eos) ids.push_back(*vocab_.eos_id);
  return ids;
}

std::string SpmTokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string out;
  bool strip_space = add_space_prefix_;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_.size()) continue;
    const std::string& piece = vocab_.tokens[id];
    switch (vocab_.types[id]) {
      case TokenType::kControl:
      case TokenType::kUnknown:
        if (skip_special_tokens) continue;
        out += piece;
        break;
      case TokenType::kUserDefined:
        out += piece;
        break;
      case TokenType::kUnused:
        break;  // llama.cpp prints nothing for them
      case TokenType::kByte:
        if (auto byte = parse_byte_piece(piece)) {
          out.push_back(static_cast<char>(*byte));
        } else {
          out += piece;
        }
        break;
      default: {
        std::string text = unescape_spaces(piece);
        if (strip_space && !text.empty() && text[0] == ' ') text.erase(0, 1);
        out += text;
      }
    }
    strip_space = false;
  }
  // Byte tokens may spell invalid UTF-8; repair it as sentencepiece does (an incomplete
  // character at the end shows as U+FFFD, which IncrementalDecoder holds back).
  return utf8::to_valid_lossy(out);
}

}  // namespace

VocabDefaults spm_defaults() { return {.bos_id = 1, .eos_id = 2, .unk_id = 0, .add_bos = true}; }

std::unique_ptr<Tokenizer> make_spm_tokenizer(GgufVocab vocab, bool add_space_prefix) {
  return std::make_unique<SpmTokenizer>(std::move(vocab), add_space_prefix);
}

}  // namespace strata::gguf_tok
