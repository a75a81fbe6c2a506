#include "common/tokenizer/added_tokens.h"

#include <cctype>

#include "common/utf8.h"

namespace strata {
namespace {

bool is_word_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '_' || u >= 0x80;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  for (uint32_t i = 0; i < tokens_.size(); ++i) {
    const std::string& content = tokens_[i].content;
    if (!content.empty()) by_first_byte_[static_cast<uint8_t>(content[0])].push_back(i);
  }
}

void AddedTokenMatcher::split(std::vector<Segment>& segments, bool normalized) const {
  if (tokens_.empty()) return;
  std::vector<Segment> out;
  for (Segment& segment : segments) {
    if (segment.added_id >= 0) {
      out.push_back(std::move(segment));
      continue;
    }
    const std::string& s = segment.text;
    size_t start_offset = 0, pos = 0;
    while (pos < s.size()) {
      const AddedToken* best = nullptr;
      for (uint32_t index : by_first_byte_[static_cast<uint8_t>(s[pos])]) {
        const AddedToken& token = tokens_[index];
        if (token.normalized == normalized &&
            s.compare(pos, token.content.size(), token.content) == 0 &&
            (!best || token.content.size() > best->content.size())) {
          best = &token;
        }
      }
      if (!best) {
        ++pos;
        continue;
      }
      size_t start = pos, stop = pos + best->content.size();
      pos = stop;
      if (best->single_word) {
        const bool start_ok = start == 0 || !is_word_char(s[start - 1]);
        const bool stop_ok = stop == s.size() || !is_word_char(s[stop]);
        if (!start_ok || !stop_ok) continue;
      }
      if (best->lstrip) {
        size_t new_start = start;
        while (new_start > start_offset && utf8::is_ascii_space(s[new_start - 1])) --new_start;
        start = new_start;
      }
      if (best->rstrip) {
        while (stop < s.size() && utf8::is_ascii_space(s[stop])) ++stop;
        pos = stop;
      }
      if (start_offset < start) {
        out.push_back({s.substr(start_offset, start - start_offset), -1,
                       segment.at_start && start_offset == 0});
      }
      out.push_back({s.substr(start, stop - start), best->id, false});
      start_offset = stop;
    }
    if (start_offset < s.size()) {
      out.push_back({s.substr(start_offset), -1, segment.at_start && start_offset == 0});
    }
  }
  segments = std::move(out);
}

}  // namespace strata
