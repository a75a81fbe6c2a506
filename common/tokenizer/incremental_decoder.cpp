// IncrementalDecoder: the prefix/read-offset method of TGI and vLLM. ids_[prefix_offset_,
// read_offset_) were already emitted; decoding them together with the new ids and emitting
// only the suffix keeps context-dependent rules (leading-space strip, byte fallback) exact.
#include "common/tokenizer/tokenizer.h"
#include "common/utf8.h"

namespace strata {
namespace {

bool is_incomplete(std::string_view text) {
  return utf8::ends_with_incomplete_sequence(text) ||
         (text.size() >= 3 && text.substr(text.size() - 3) == utf8::kReplacementChar);
}

}  // namespace

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tokenizer,
                                       std::span<const int32_t> context_ids,
                                       bool skip_special_tokens)
    : tokenizer_(tokenizer),
      skip_special_tokens_(skip_special_tokens),
      ids_(context_ids.begin(), context_ids.end()) {
  // Keep a few context ids as the window's prefix: enough for the decoder's context rules,
  // few enough that each push stays cheap.
  constexpr size_t kContextWindow = 6;
  read_offset_ = ids_.size();
  prefix_offset_ = ids_.size() > kContextWindow ? ids_.size() - kContextWindow : 0;
}

std::string IncrementalDecoder::push(int32_t id) {
  ids_.push_back(id);
  std::span<const int32_t> all(ids_);
  const std::string prefix_text = tokenizer_.decode(
      all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_tokens_);
  const std::string new_text = tokenizer_.decode(all.subspan(prefix_offset_), skip_special_tokens_);
  if (new_text.size() <= prefix_text.size() || is_incomplete(new_text) ||
      new_text.compare(0, prefix_text.size(), prefix_text) != 0) {
    return "";
  }
  std::string emitted = new_text.substr(prefix_text.size());
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  return emitted;
}

std::string IncrementalDecoder::flush() {
  std::span<const int32_t> all(ids_);
  const std::string prefix_text = tokenizer_.decode(
      all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_tokens_);
  const std::string new_text = tokenizer_.decode(all.subspan(prefix_offset_), skip_special_tokens_);
  prefix_offset_ = read_offset_ = ids_.size();
  if (new_text.size() <= prefix_text.size()) return "";
  return new_text.substr(prefix_text.size());
}

}  // namespace strata
