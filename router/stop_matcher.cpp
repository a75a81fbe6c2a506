#include "router/stop_matcher.h"

#include <algorithm>

namespace strata::router {
namespace {

// Start of the incomplete UTF-8 sequence that ends `s`, or s.size() if it ends complete.
size_t incomplete_utf8_tail(std::string_view s) {
  // Look back at most 3 bytes for a lead byte whose sequence runs past the end.
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const auto b = static_cast<unsigned char>(s[s.size() - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t need = 1;
    if ((b & 0xE0) == 0xC0)
      need = 2;
    else if ((b & 0xF0) == 0xE0)
      need = 3;
    else if ((b & 0xF8) == 0xF0)
      need = 4;
    return need > back ? s.size() - back : s.size();
  }
  return s.size();
}

}  // namespace

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}

StopMatcher::Output StopMatcher::feed(std::string_view delta) {
  if (matched_) return Output{.text = "", .matched = true, .stop_index = stop_index_};
  held_.append(delta);

  // The earliest complete occurrence of any stop string (on a tie, the first listed; the cut
  // is the same).
  size_t best_pos = std::string::npos;
  for (size_t i = 0; i < stops_.size(); ++i) {
    if (stops_[i].empty()) continue;
    const size_t pos = held_.find(stops_[i]);
    if (pos < best_pos) {
      best_pos = pos;
      stop_index_ = i;
    }
  }
  if (best_pos != std::string::npos) {
    matched_ = true;
    Output out{.text = held_.substr(0, best_pos), .matched = true, .stop_index = stop_index_};
    held_.clear();
    return out;
  }

  // Hold back the longest suffix that is a proper prefix of some stop string.
  size_t keep_from = held_.size();
  for (const std::string& stop : stops_) {
    const size_t longest = std::min(stop.size() - (stop.empty() ? 0 : 1), held_.size());
    for (size_t len = longest; len > 0; --len) {
      if (held_.size() - len >= keep_from) break;  // not longer than what is already held
      if (std::string_view(held_).substr(held_.size() - len) ==
          std::string_view(stop).substr(0, len)) {
        keep_from = held_.size() - len;
        break;
      }
    }
  }
  keep_from = std::min(keep_from, incomplete_utf8_tail(held_));
  Output out{.text = held_.substr(0, keep_from), .matched = false, .stop_index = 0};
  held_.erase(0, keep_from);
  return out;
}

std::string StopMatcher::flush() {
  std::string out = std::move(held_);
  held_.clear();
  return matched_ ? std::string() : out;
}

}  // namespace strata::router
