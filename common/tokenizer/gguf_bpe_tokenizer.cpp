// Encoding, as llama.cpp's BPE tokenize: control, unknown and user-defined tokens are split
// out of the text first (leftmost-longest, as HF's added tokens); every other fragment is
// split by the pre-tokenizer's regexes in turn (each match and each gap its own piece, as
// llama.cpp's unicode_regex_split and HF's Split "Isolated"), mapped to the byte-level
// alphabet and merged by rank. The regexes are llama.cpp's, which rewrites HF's
// case-insensitive contraction group (?i:'s|...) as (?:'[sS]|...) to avoid Unicode folding.
//
// Decoding: normal tokens map back from the byte-level alphabet; control and unknown
// tokens vanish (or show their text when specials are kept); user-defined tokens show
// their text. llama.cpp's clean_spaces rewriting (" ," -> ",") is not applied: the
// `tokenizers` decoder, which tokenizer.json models are tested against, does not do it.
#include "common/tokenizer/gguf_bpe_tokenizer.h"

#include <optional>

#include "common/tokenizer/hf_bpe_model.h"
#include "common/tokenizer/hf_pre_tokenizer.h"
#include "common/utf8.h"

namespace strata::gguf_tok {
namespace {

constexpr const char* kGpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
constexpr const char* kLlama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kTekken =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?"
    "((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// deepseek-llm's letter class from llama-vocab.cpp, as \x{...} escapes: written as UTF-8
// text it is at risk of Unicode normalization (U+1F7D becomes U+03CE, and the range breaks).
constexpr const char* kDeepseekLetters =
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}"
    "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}"
    "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-"
    "\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}"
    "\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-"
    "\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}"
    "\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}"
    "\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}"
    "\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-"
    "\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}"
    "\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}"
    "\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}"
    "\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-"
    "\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}"
    "\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}"
    "-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-"
    "\\x{118DF}\\x{1E900}-\\x{1E943}]+";

// ASCII and full-width punctuation, quotes and ideographic space (deepseek-llm).
constexpr const char* kDeepseekPunctuation =
    "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+";
// CJK ideographs, Hangul and the blocks between (deepseek-llm, deepseek-coder).
constexpr const char* kCjk = "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+";
// Anything but spaces and sentence punctuation (bloom, poro-chat, viking).
constexpr const char* kBloom =
    " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+";

struct NamedSpec {
  std::vector<std::string_view> names;
  PreTokenizerSpec spec;
};

// llama-vocab.cpp's tokenizer.ggml.pre names and the regexes of their pre-tokenizer types.
const std::vector<NamedSpec>& pre_tokenizer_table() {
  static const std::vector<NamedSpec> table = {
      {{"default"}, {{"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2, "\\p{N}+", "[0-9][0-9][0-9]"}}},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3"}, {{kLlama3}, true, true}},
      {{"dbrx", "smaug-bpe"}, {{kLlama3}}},
      {{"deepseek-llm"},
       {{"[\r\n]", kDeepseekLetters, kDeepseekPunctuation, "\\s+$", kCjk, "\\p{N}+"}}},
      {{"deepseek-coder"}, {{"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", kCjk, "\\p{N}"}}},
      {{"deepseek-v3"},
       {{"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
         "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?"
         "[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}}},
      {{"falcon"}, {{"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2, "[0-9][0-9][0-9]"}}},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"},
       {{"\\p{N}", kGpt2}}},
      {{"gpt2", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es",
        "jina-v2-de", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais"},
       {{kGpt2}}},
      {{"qwen2", "deepseek-r1-qwen", "megrez", "stablelm2"}, {{kQwen2}}},
      {{"poro-chat", "bloom", "gpt3-finnish"}, {{kBloom}}},
      {{"chatglm-bpe"}, {{kLlama3}}},
      {{"viking"}, {{kBloom, "\\p{N}"}}},
      {{"tekken"}, {{kTekken}, true, true}},
  };
  return table;
}

// The tokenizer.json pre_tokenizer equivalent: Split(Isolated) per regex, then ByteLevel.
nlohmann::json pre_tokenizer_json(const PreTokenizerSpec& pre) {
  nlohmann::json list = nlohmann::json::array();
  for (const std::string& regex : pre.regexes) {
    list.push_back({{"type", "Split"}, {"pattern", {{"Regex", regex}}},
                    {"behavior", "Isolated"}, {"invert", false}});
  }
  list.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}});
  return {{"type", "Sequence"}, {"pretokenizers", std::move(list)}};
}

// The tokenizer.json model equivalent. Merges are split at the first space after the
// first byte, as llama.cpp does; each part and their concatenation must be tokens.
StatusOr<nlohmann::json> bpe_model_json(const GgufVocab& vocab,
                                        const std::vector<std::string>& merges,
                                        bool ignore_merges) {
  nlohmann::json pieces = nlohmann::json::object();
  for (int32_t id = 0; id < vocab.size(); ++id) pieces[vocab.tokens[id]] = id;
  nlohmann::json pairs = nlohmann::json::array();
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string& merge = merges[rank];
    const size_t space = merge.find(' ', 1);
    if (space == std::string::npos) {
      return invalid_argument("{}: metadata `tokenizer.ggml.merges`[{}] \"{}\" is not \"a b\"",
                              vocab.file, rank, merge);
    }
    std::string a = merge.substr(0, space), b = merge.substr(space + 1);
    if (!vocab.ids.count(a) || !vocab.ids.count(b) || !vocab.ids.count(a + b)) {
      return invalid_argument(
          "{}: metadata `tokenizer.ggml.merges`[{}] \"{}\" names a piece that is not in "
          "tokenizer.ggml.tokens",
          vocab.file, rank, merge);
    }
    pairs.push_back({std::move(a), std::move(b)});
  }
  return nlohmann::json{{"type", "BPE"}, {"vocab", std::move(pieces)}, {"merges", std::move(pairs)},
                        {"ignore_merges", ignore_merges}};
}

class BpeTokenizer final : public GgufTokenizerBase {
 public:
  BpeTokenizer(GgufVocab vocab, hf::BpeModel model, hf::PreTokenizer pre_tokenizer)
      : GgufTokenizerBase(std::move(vocab)),
        model_(std::move(model)),
        pre_tokenizer_(std::move(pre_tokenizer)),
        added_(vocab_.added_tokens()) {
    for (int b = 0; b < 256; ++b) {
      bytes_.emplace(hf::byte_level_alphabet()[b], static_cast<char>(b));
    }
  }

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override;
  std::string_view kind() const override { return "gguf-gpt2"; }

 private:
  // A normal token's bytes: each character mapped back from the byte-level alphabet (a
  // character outside it stays as it is, as HF's ByteLevel decoder leaves it).
  void append_token_bytes(const std::string& piece, std::string& out) const;

  hf::BpeModel model_;
  hf::PreTokenizer pre_tokenizer_;
  AddedTokenMatcher added_;
  std::unordered_map<std::string, char> bytes_;  // byte-level character -> byte
};

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  if (add_special_tokens && vocab_.add_bos) ids.push_back(*vocab_.bos_id);
  // The regexes need valid UTF-8; repair it as the HF loader does.
  std::vector<Segment> segments{{utf8::to_valid_lossy(text), -1, true}};
  added_.split(segments, /*normalized=*/false);
  for (const Segment& segment : segments) {
    if (segment.added_id >= 0) {
      ids.push_back(segment.added_id);
      continue;
    }
    std::vector<hf::PreToken> pieces{{segment.text, segment.at_start}};
    pre_tokenizer_(pieces);
    for (const auto& piece : pieces) model_.tokenize(piece.text, ids);
  }
  if (add_special_tokens && vocab_.add_eos) ids.push_back(*vocab_.eos_id);
  return ids;
}

void BpeTokenizer::append_token_bytes(const std::string& piece, std::string& out) const {
  std::string mapped;
  for (size_t pos = 0; pos < piece.size();) {
    const size_t length = utf8::char_length(piece, pos);
    auto it = bytes_.find(piece.substr(pos, length));
    if (it == bytes_.end()) {
      out += piece;
      return;
    }
    mapped.push_back(it->second);
    pos += length;
  }
  out += mapped;
}

std::string BpeTokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_.size()) continue;
    switch (vocab_.types[id]) {
      case TokenType::kControl:
      case TokenType::kUnknown:
        if (!skip_special_tokens) out += vocab_.tokens[id];
        break;
      case TokenType::kUserDefined:
        out += vocab_.tokens[id];
        break;
      case TokenType::kUnused:
        break;
      default:
        append_token_bytes(vocab_.tokens[id], out);
    }
  }
  // As HF's ByteLevel decoder: invalid UTF-8 repaired once over the whole text (an
  // incomplete character at the end shows as U+FFFD, which IncrementalDecoder holds back).
  return utf8::to_valid_lossy(out);
}

}  // namespace

std::optional<PreTokenizerSpec> find_pre_tokenizer(std::string_view name) {
  for (const NamedSpec& entry : pre_tokenizer_table()) {
    for (std::string_view known : entry.names) {
      if (known == name) return entry.spec;
    }
  }
  return std::nullopt;
}

std::string known_pre_tokenizer_names() {
  std::string names;
  for (const NamedSpec& entry : pre_tokenizer_table()) {
    for (std::string_view known : entry.names) {
      if (!names.empty()) names += ", ";
      names += known;
    }
  }
  return names;
}

StatusOr<std::unique_ptr<Tokenizer>> make_bpe_tokenizer(GgufVocab vocab,
                                                        const std::vector<std::string>& merges,
                                                        const PreTokenizerSpec& pre) {
  const hf::JsonContext ctx{vocab.file};
  STRATA_ASSIGN_OR_RETURN(nlohmann::json model_json,
                          bpe_model_json(vocab, merges, pre.ignore_merges));
  STRATA_ASSIGN_OR_RETURN(hf::BpeModel model, hf::BpeModel::parse(ctx, model_json));
  STRATA_ASSIGN_OR_RETURN(
      hf::PreTokenizer pre_tokenizer,
      hf::parse_pre_tokenizer(ctx, "tokenizer.ggml.pre", pre_tokenizer_json(pre)));
  return std::unique_ptr<Tokenizer>(
      std::make_unique<BpeTokenizer>(std::move(vocab), std::move(model), std::move(pre_tokenizer)));
}

}  // namespace strata::gguf_tok
