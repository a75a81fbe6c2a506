#include "common/tokenizer/hf_normalizer.h"

#include <cstdlib>
#include <memory>
#include <vector>

#include <utf8proc.h>

#include "common/tokenizer/regex.h"
#include "common/utf8.h"

namespace strata::hf {
namespace {

std::string utf8proc_apply(std::string_view text, int options) {
  utf8proc_uint8_t* result = nullptr;
  const auto length = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                   static_cast<utf8proc_ssize_t>(text.size()), &result,
                                   static_cast<utf8proc_option_t>(options));
  if (length < 0) return std::string(text);  // input is valid UTF-8 by now; keep it as is
  std::string out(reinterpret_cast<char*>(result), static_cast<size_t>(length));
  std::free(result);
  return out;
}

std::string replace_all(std::string_view text, const Regex& regex, std::string_view content) {
  std::string out;
  size_t last = 0;
  for (auto [begin, end] : regex.find_all(text)) {
    out.append(text.substr(last, begin - last));
    out.append(content);
    last = end;
  }
  out.append(text.substr(last));
  return out;
}

}  // namespace

StatusOr<Normalizer> parse_normalizer(const JsonContext& ctx, const std::string& field,
                                      const nlohmann::json& node) {
  const std::string type = node.value("type", "");
  if (type == "Sequence") {
    std::vector<Normalizer> parts;
    const auto& list = node["normalizers"];
    for (size_t i = 0; i < list.size(); ++i) {
      STRATA_ASSIGN_OR_RETURN(Normalizer part,
                              parse_normalizer(ctx, fmt::format("{}.normalizers[{}]", field, i),
                                               list[i]));
      parts.push_back(std::move(part));
    }
    return Normalizer([parts](std::string_view text) {
      std::string out(text);
      for (const auto& part : parts) out = part(out);
      return out;
    });
  }
  if (type == "Prepend") {
    const std::string prepend = node.value("prepend", "");
    return Normalizer([prepend](std::string_view text) {
      return text.empty() ? std::string() : prepend + std::string(text);
    });
  }
  if (type == "Replace") {
    STRATA_ASSIGN_OR_RETURN(Pattern pattern, parse_pattern(ctx, field + ".pattern", node["pattern"]));
    auto regex = pattern.is_regex ? Regex::compile(pattern.text) : Regex::literal(pattern.text);
    if (!regex.ok()) return regex.status().with_context(ctx.file + ": " + field + ".pattern: ");
    const std::string content = node.value("content", "");
    return Normalizer([regex = *regex, content](std::string_view text) {
      return replace_all(text, *regex, content);
    });
  }
  if (type == "NFC" || type == "NFKC" || type == "NFD" || type == "NFKD") {
    int options = UTF8PROC_STABLE | (type[2] == 'C' || type[3] == 'C' ? UTF8PROC_COMPOSE
                                                                      : UTF8PROC_DECOMPOSE);
    if (type[2] == 'K') options |= UTF8PROC_COMPAT;
    return Normalizer([options](std::string_view text) { return utf8proc_apply(text, options); });
  }
  if (type == "Lowercase") {
    return Normalizer([](std::string_view text) {
      std::string out;
      for (size_t pos = 0; pos < text.size();) {
        size_t length = 0;
        const char32_t cp = utf8::decode(text, pos, &length);
        utf8::append(out, static_cast<char32_t>(utf8proc_tolower(static_cast<int32_t>(cp))));
        pos += length;
      }
      return out;
    });
  }
  if (type == "Strip") {
    const bool left = node.value("strip_left", false), right = node.value("strip_right", false);
    return Normalizer([left, right](std::string_view text) {
      while (left && !text.empty() && utf8::is_ascii_space(text.front())) text.remove_prefix(1);
      while (right && !text.empty() && utf8::is_ascii_space(text.back())) text.remove_suffix(1);
      return std::string(text);
    });
  }
  return unsupported_type(ctx, field, node);
}

}  // namespace strata::hf
