#include "common/tokenizer/hf_pre_tokenizer.h"

#include <algorithm>
#include <memory>

#include "common/tokenizer/regex.h"
#include "common/utf8.h"

namespace strata::hf {
namespace {

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

using Span = std::pair<size_t, size_t>;
using Finder = std::function<std::vector<Span>(std::string_view)>;

// HF's NormalizedString::split: matches and the gaps between them, then grouped by behavior;
// empty pieces are dropped.
void split_pieces(std::vector<PreToken>& pieces, const Finder& find, Behavior behavior,
                  bool invert) {
  std::vector<PreToken> out;
  for (const PreToken& piece : pieces) {
    std::vector<std::pair<Span, bool>> parts;
    size_t prev = 0;
    for (auto [begin, end] : find(piece.text)) {
      if (prev != begin) parts.push_back({{prev, begin}, false});
      parts.push_back({{begin, end}, true});
      prev = end;
    }
    if (prev != piece.text.size()) parts.push_back({{prev, piece.text.size()}, false});
    if (invert) {
      for (auto& part : parts) part.second = !part.second;
    }
    std::vector<Span> spans;
    bool previous_match = false;
    switch (behavior) {
      case Behavior::kRemoved:
        for (auto& [span, is_match] : parts) {
          if (!is_match) spans.push_back(span);
        }
        break;
      case Behavior::kIsolated:
        for (auto& part : parts) spans.push_back(part.first);
        break;
      case Behavior::kMergedWithPrevious:
        for (auto& [span, is_match] : parts) {
          if (is_match && !previous_match && !spans.empty()) {
            spans.back().second = span.second;
          } else {
            spans.push_back(span);
          }
          previous_match = is_match;
        }
        break;
      case Behavior::kMergedWithNext:
        for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
          if (it->second && !previous_match && !spans.empty()) {
            spans.back().first = it->first.first;
          } else {
            spans.push_back(it->first);
          }
          previous_match = it->second;
        }
        std::reverse(spans.begin(), spans.end());
        break;
      case Behavior::kContiguous:
        for (auto& [span, is_match] : parts) {
          if (is_match == previous_match && !spans.empty()) {
            spans.back().second = span.second;
          } else {
            spans.push_back(span);
          }
          previous_match = is_match;
        }
        break;
    }
    for (auto [begin, end] : spans) {
      if (end > begin) {
        out.push_back({piece.text.substr(begin, end - begin), piece.at_start && begin == 0});
      }
    }
  }
  pieces = std::move(out);
}

StatusOr<Behavior> parse_behavior(const JsonContext& ctx, const std::string& field,
                                  const std::string& name) {
  if (name == "Removed") return Behavior::kRemoved;
  if (name == "Isolated") return Behavior::kIsolated;
  if (name == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return Behavior::kMergedWithNext;
  if (name == "Contiguous") return Behavior::kContiguous;
  return unimplemented("{}: {} \"{}\" is not supported", ctx.file, field, name);
}

Finder regex_finder(std::shared_ptr<const Regex> regex) {
  return [regex](std::string_view text) { return regex->find_all(text); };
}

// Matches every single character for which `pred(code point)` holds.
template <typename Pred>
Finder char_finder(Pred pred) {
  return [pred](std::string_view text) {
    std::vector<Span> spans;
    for (size_t pos = 0; pos < text.size();) {
      size_t length = 0;
      const char32_t cp = utf8::decode(text, pos, &length);
      if (pred(cp)) spans.push_back({pos, pos + length});
      pos += length;
    }
    return spans;
  };
}

bool is_unicode_whitespace(char32_t cp) {
  return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace

const std::vector<std::string>& byte_level_alphabet() {
  static const std::vector<std::string> table = [] {
    std::vector<std::string> chars(256);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      utf8::append(chars[b], static_cast<char32_t>(printable ? b : next++));
    }
    return chars;
  }();
  return table;
}

StatusOr<PreTokenizer> parse_pre_tokenizer(const JsonContext& ctx, const std::string& field,
                                           const nlohmann::json& node) {
  const std::string type = node.value("type", "");
  if (type == "Sequence") {
    std::vector<PreTokenizer> parts;
    const auto& list = node["pretokenizers"];
    for (size_t i = 0; i < list.size(); ++i) {
      STRATA_ASSIGN_OR_RETURN(
          PreTokenizer part,
          parse_pre_tokenizer(ctx, fmt::format("{}.pretokenizers[{}]", field, i), list[i]));
      parts.push_back(std::move(part));
    }
    return PreTokenizer([parts](std::vector<PreToken>& pieces) {
      for (const auto& part : parts) part(pieces);
    });
  }
  if (type == "ByteLevel") {
    const bool add_prefix_space = node.value("add_prefix_space", false);
    std::shared_ptr<const Regex> regex;
    if (node.value("use_regex", true)) {
      auto compiled = Regex::compile(kGpt2Pattern);
      if (!compiled.ok()) return compiled.status();
      regex = *compiled;
    }
    return PreTokenizer([add_prefix_space, regex](std::vector<PreToken>& pieces) {
      if (add_prefix_space) {
        for (auto& piece : pieces) {
          if (!piece.text.empty() && piece.text[0] != ' ') piece.text.insert(0, " ");
        }
      }
      if (regex) split_pieces(pieces, regex_finder(regex), Behavior::kIsolated, false);
      const auto& alphabet = byte_level_alphabet();
      for (auto& piece : pieces) {
        std::string mapped;
        for (char c : piece.text) mapped += alphabet[static_cast<uint8_t>(c)];
        piece.text = std::move(mapped);
      }
    });
  }
  if (type == "Split") {
    STRATA_ASSIGN_OR_RETURN(Pattern pattern, parse_pattern(ctx, field + ".pattern", node["pattern"]));
    auto regex = pattern.is_regex ? Regex::compile(pattern.text) : Regex::literal(pattern.text);
    if (!regex.ok()) return regex.status().with_context(ctx.file + ": " + field + ".pattern: ");
    STRATA_ASSIGN_OR_RETURN(Behavior behavior, parse_behavior(ctx, field + ".behavior",
                                                              node.value("behavior", "")));
    const bool invert = node.value("invert", false);
    Finder find = regex_finder(*regex);
    return PreTokenizer([find, behavior, invert](std::vector<PreToken>& pieces) {
      split_pieces(pieces, find, behavior, invert);
    });
  }
  if (type == "Metaspace") {
    const std::string replacement = node.value("replacement", "\xE2\x96\x81");
    std::string scheme;
    if (node.contains("prepend_scheme") && node["prepend_scheme"].is_string()) {
      scheme = node["prepend_scheme"].get<std::string>();
    } else {
      scheme = node.value("add_prefix_space", true) ? "always" : "never";
    }
    if (scheme != "always" && scheme != "first" && scheme != "never") {
      return unimplemented("{}: {}.prepend_scheme \"{}\" is not supported", ctx.file, field, scheme);
    }
    const bool split = node.value("split", true);
    auto literal = Regex::literal(replacement);
    if (!literal.ok()) return literal.status();
    Finder find = regex_finder(*literal);
    return PreTokenizer([replacement, scheme, split, find](std::vector<PreToken>& pieces) {
      for (auto& piece : pieces) {
        std::string replaced;
        for (char c : piece.text) {
          if (c == ' ') {
            replaced += replacement;
          } else {
            replaced += c;
          }
        }
        const bool starts = replaced.compare(0, replacement.size(), replacement) == 0;
        if (!replaced.empty() && !starts &&
            (scheme == "always" || (scheme == "first" && piece.at_start))) {
          replaced.insert(0, replacement);
        }
        piece.text = std::move(replaced);
      }
      if (split) split_pieces(pieces, find, Behavior::kMergedWithNext, false);
    });
  }
  if (type == "Digits") {
    const Behavior behavior =
        node.value("individual_digits", false) ? Behavior::kIsolated : Behavior::kContiguous;
    Finder find = char_finder([](char32_t cp) { return cp >= '0' && cp <= '9'; });
    return PreTokenizer([find, behavior](std::vector<PreToken>& pieces) {
      split_pieces(pieces, find, behavior, false);
    });
  }
  if (type == "Whitespace") {
    auto regex = Regex::compile(R"(\w+|[^\w\s]+)");
    if (!regex.ok()) return regex.status();
    Finder find = regex_finder(*regex);
    return PreTokenizer([find](std::vector<PreToken>& pieces) {
      split_pieces(pieces, find, Behavior::kRemoved, true);
    });
  }
  if (type == "WhitespaceSplit") {
    Finder find = char_finder(is_unicode_whitespace);
    return PreTokenizer([find](std::vector<PreToken>& pieces) {
      split_pieces(pieces, find, Behavior::kRemoved, false);
    });
  }
  return unsupported_type(ctx, field, node);
}

}  // namespace strata::hf
