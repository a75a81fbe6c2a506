#include "common/tokenizer/hf_decoder.h"

#include <cctype>
#include <unordered_map>

#include "common/tokenizer/hf_pre_tokenizer.h"
#include "common/tokenizer/regex.h"
#include "common/utf8.h"

namespace strata::hf {
namespace {

std::vector<std::string> split_chars(const std::string& s) {
  std::vector<std::string> chars;
  for (size_t pos = 0; pos < s.size();) {
    const size_t n = utf8::char_length(s, pos);
    chars.push_back(s.substr(pos, n));
    pos += n;
  }
  return chars;
}

}  // namespace

StatusOr<Decoder> parse_decoder(const JsonContext& ctx, const std::string& field,
                                const nlohmann::json& node) {
  const std::string type = node.value("type", "");
  if (type == "Sequence") {
    std::vector<Decoder> parts;
    const auto& list = node["decoders"];
    for (size_t i = 0; i < list.size(); ++i) {
      STRATA_ASSIGN_OR_RETURN(Decoder part,
                              parse_decoder(ctx, fmt::format("{}.decoders[{}]", field, i), list[i]));
      parts.push_back(std::move(part));
    }
    return Decoder([parts](std::vector<std::string>& tokens) {
      for (const auto& part : parts) part(tokens);
    });
  }
  if (type == "ByteLevel") {
    std::unordered_map<std::string, char> bytes;
    const auto& alphabet = byte_level_alphabet();
    for (int b = 0; b < 256; ++b) bytes[alphabet[b]] = static_cast<char>(b);
    // Bytes are joined across tokens, then invalid UTF-8 is repaired lossily as HF does (an
    // incomplete character at the end shows as U+FFFD, which IncrementalDecoder holds back).
    return Decoder([bytes](std::vector<std::string>& tokens) {
      std::string raw;
      for (const std::string& token : tokens) {
        std::string mapped;
        bool all_mapped = true;
        for (const std::string& c : split_chars(token)) {
          auto it = bytes.find(c);
          if (it == bytes.end()) {
            all_mapped = false;
            break;
          }
          mapped.push_back(it->second);
        }
        raw += all_mapped ? mapped : token;
      }
      tokens.assign(1, utf8::to_valid_lossy(raw));
    });
  }
  if (type == "Replace") {
    STRATA_ASSIGN_OR_RETURN(Pattern pattern, parse_pattern(ctx, field + ".pattern", node["pattern"]));
    auto regex = pattern.is_regex ? Regex::compile(pattern.text) : Regex::literal(pattern.text);
    if (!regex.ok()) return regex.status().with_context(ctx.file + ": " + field + ".pattern: ");
    const std::string content = node.value("content", "");
    return Decoder([regex = *regex, content](std::vector<std::string>& tokens) {
      for (std::string& token : tokens) {
        std::string out;
        size_t last = 0;
        for (auto [begin, end] : regex->find_all(token)) {
          out.append(token, last, begin - last);
          out += content;
          last = end;
        }
        out.append(token, last);
        token = std::move(out);
      }
    });
  }
  if (type == "ByteFallback") {
    return Decoder([](std::vector<std::string>& tokens) {
      std::vector<std::string> out;
      std::string pending;
      auto flush = [&] {
        if (pending.empty()) return;
        if (utf8::is_valid(pending)) {
          out.push_back(pending);
        } else {
          for (size_t i = 0; i < pending.size(); ++i) out.emplace_back(utf8::kReplacementChar);
        }
        pending.clear();
      };
      for (std::string& token : tokens) {
        if (token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>' &&
            std::isxdigit(static_cast<unsigned char>(token[3])) &&
            std::isxdigit(static_cast<unsigned char>(token[4]))) {
          pending.push_back(static_cast<char>(std::stoi(token.substr(3, 2), nullptr, 16)));
        } else {
          flush();
          out.push_back(std::move(token));
        }
      }
      flush();
      tokens = std::move(out);
    });
  }
  if (type == "Fuse") {
    return Decoder([](std::vector<std::string>& tokens) {
      std::string joined;
      for (const auto& token : tokens) joined += token;
      tokens.assign(1, std::move(joined));
    });
  }
  if (type == "Strip") {
    const std::string content = node.value("content", " ");
    const size_t start = node.value("start", 0), stop = node.value("stop", 0);
    return Decoder([content, start, stop](std::vector<std::string>& tokens) {
      for (std::string& token : tokens) {
        std::vector<std::string> chars = split_chars(token);
        size_t begin = 0, end = chars.size();
        while (begin < start && begin < end && chars[begin] == content) ++begin;
        size_t cut = 0;
        while (cut < stop && end > begin && chars[end - 1] == content) --end, ++cut;
        std::string out;
        for (size_t i = begin; i < end; ++i) out += chars[i];
        token = std::move(out);
      }
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
    const bool strip_first = scheme != "never";
    // As HF: every replacement char becomes a space, except in the first token, where they
    // are dropped (the prefix the pre-tokenizer added).
    return Decoder([replacement, strip_first](std::vector<std::string>& tokens) {
      for (size_t i = 0; i < tokens.size(); ++i) {
        std::string out;
        for (const std::string& c : split_chars(tokens[i])) {
          if (c == replacement) {
            if (!(i == 0 && strip_first)) out += ' ';
          } else {
            out += c;
          }
        }
        tokens[i] = std::move(out);
      }
    });
  }
  return unsupported_type(ctx, field, node);
}

}  // namespace strata::hf
