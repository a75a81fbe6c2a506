// StopMatcher: applies stop strings to streamed text, as OpenAI does: generation output is
// cut just before the earliest occurrence of any stop string, and the stop string itself is
// not sent.
//
// Design note: text arrives in deltas split anywhere. The matcher keeps back the longest
// suffix of the unsent text that is a proper prefix of some stop string (and any incomplete
// UTF-8 sequence at the end), and sends the rest at once. No occurrence can start inside
// sent text: if one began at position p before the held suffix, the text from p to the end
// would be a longer suffix that is a prefix of a stop string. So the cut is always at the
// earliest occurrence in the full text, whatever the split points. Cost per delta is
// O(num_stops · max_stop_len · (held + delta)); the held text is < max_stop_len bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace strata::router {

class StopMatcher {
 public:
  // Empty strings in `stops` are ignored (the API layer refuses them anyway).
  explicit StopMatcher(std::vector<std::string> stops);

  struct Output {
    std::string text;       // safe to send now
    bool matched = false;   // a stop string completed: `text` ends just before it
    size_t stop_index = 0;  // which stop string (index into the constructor's list)
  };

  // Adds a delta. After a match every later call returns an empty, matched Output.
  Output feed(std::string_view delta);
  // End of generation: returns the held text ("" after a match).
  std::string flush();

  bool matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool matched_ = false;
  size_t stop_index_ = 0;
};

}  // namespace strata::router
