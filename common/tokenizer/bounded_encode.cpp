#include "common/tokenizer/bounded_encode.h"

#include <algorithm>

#include "common/utf8.h"

namespace strata {
namespace {

// Below this the whole text is encoded at once: no prefix is worth the second pass.
constexpr size_t kMinPrefixBytes = 16 << 10;
// Ordinary text is 2 to 6 bytes a token; the first prefix aims past the limit at 8.
constexpr size_t kFirstGuessBytesPerToken = 8;

// The last position in (end / 2, end] where a word ends and whitespace begins; 0 if none.
size_t word_end_before(std::string_view text, size_t end) {
  for (size_t i = end; i > end / 2; --i) {
    if (utf8::is_ascii_space(text[i]) && !utf8::is_ascii_space(text[i - 1])) return i;
  }
  return 0;
}

}  // namespace

BoundedEncoding encode_up_to(const Tokenizer& tokenizer, std::string_view text, bool add_special_tokens,
                             int64_t max_tokens) {
  const auto limit = static_cast<size_t>(std::max<int64_t>(max_tokens, 0));
  size_t end = std::max(kMinPrefixBytes, (limit + 1) * kFirstGuessBytesPerToken);
  while (end < text.size()) {
    if (const size_t cut = word_end_before(text, end); cut > 0) {
      std::vector<int32_t> ids = tokenizer.encode(text.substr(0, cut), add_special_tokens);
      if (ids.size() > limit) return {.ids = std::move(ids), .within = false, .encoded_bytes = cut};
      // Aim the next prefix past the limit at this prefix's bytes per token, and at least
      // double it, so the prefixes cost at most about twice the last one.
      const double bytes_per_token = static_cast<double>(cut) / static_cast<double>(std::max<size_t>(ids.size(), 1));
      const auto guess = static_cast<size_t>(bytes_per_token * static_cast<double>(limit + 1) * 1.25);
      end = std::max(end * 2, guess);
    } else {
      end *= 2;  // no word ends here (one long run): look further
    }
  }
  std::vector<int32_t> ids = tokenizer.encode(text, add_special_tokens);
  const bool within = ids.size() <= limit;
  return {.ids = std::move(ids), .within = within, .encoded_bytes = text.size()};
}

}  // namespace strata
