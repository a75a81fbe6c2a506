// A compiled PCRE2 pattern (UTF + Unicode properties, JIT when available) for the HF
// pre-tokenizers and normalizers. Immutable after construction, so one instance may be
// used from many threads (each match allocates its own match data).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace strata {

class Regex {
 public:
  // `pattern` is PCRE2 syntax; HF's Oniguruma patterns (\p{L}, (?i:...), lookahead) carry over.
  static StatusOr<std::shared_ptr<const Regex>> compile(std::string_view pattern);
  // Pattern that matches `literal` exactly.
  static StatusOr<std::shared_ptr<const Regex>> literal(std::string_view literal);
  ~Regex();

  // Non-overlapping matches, left to right, as [begin, end) byte offsets. `text` must be
  // valid UTF-8.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

 private:
  Regex() = default;
  void* code_ = nullptr;  // pcre2_code_8*, kept opaque so PCRE2 stays a private dependency
};

}  // namespace strata
