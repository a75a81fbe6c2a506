#include "common/tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace strata {

StatusOr<std::shared_ptr<const Regex>> Regex::compile(std::string_view pattern) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                    PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR buffer[256];
    pcre2_get_error_message(error_code, buffer, sizeof(buffer));
    return invalid_argument("regex \"{}\" does not compile at offset {}: {}", pattern,
                            error_offset, reinterpret_cast<const char*>(buffer));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if absent
  std::shared_ptr<Regex> regex(new Regex());
  regex->code_ = code;
  return std::shared_ptr<const Regex>(std::move(regex));
}

StatusOr<std::shared_ptr<const Regex>> Regex::literal(std::string_view literal) {
  std::string pattern = "\\Q";
  for (size_t pos = 0; pos < literal.size(); ++pos) {
    // \E inside \Q...\E would end the quoting early; split it.
    if (literal.compare(pos, 2, "\\E") == 0) {
      pattern += "\\E\\\\E\\Q";
      ++pos;
    } else {
      pattern += literal[pos];
    }
  }
  pattern += "\\E";
  return compile(pattern);
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  auto* code = static_cast<pcre2_code*>(code_);
  std::vector<std::pair<size_t, size_t>> matches;
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(code, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start <= text.size()) {
    const int rc = pcre2_match(code, subject, text.size(), start, 0, data, nullptr);
    if (rc < 0) break;
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
    const size_t begin = ovector[0], end = ovector[1];
    if (end > begin) matches.emplace_back(begin, end);
    // An empty match must not stall the scan: step over one whole character.
    if (end == begin) {
      if (end >= text.size()) break;
      size_t next = end + 1;
      while (next < text.size() && (static_cast<uint8_t>(text[next]) & 0xC0) == 0x80) ++next;
      start = next;
    } else {
      start = end;
    }
  }
  pcre2_match_data_free(data);
  return matches;
}

}  // namespace strata
