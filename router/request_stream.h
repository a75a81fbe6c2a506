// RequestStream: one HTTP generation request while it runs — its n choices, each an
// engine request on a worker group. Token outputs arrive from the dispatcher, are
// detokenized incrementally (never splitting a UTF-8 character), cut at stop strings (the
// worker is then told to stop), and become per-choice deltas; each change wakes the
// listener (the HTTP connection), which streams them as SSE chunks or, at the end,
// assembles one response.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/tokenizer/tokenizer.h"
#include "common/wire.h"
#include "router/api_types.h"
#include "router/metrics.h"
#include "router/stop_matcher.h"

namespace strata::router {

using Clock = std::chrono::steady_clock;

class RequestStream {
 public:
  RequestStream(GenerationRequest request, std::vector<int32_t> prompt_ids,
                const Tokenizer& tokenizer, RouterMetrics& metrics, Clock::time_point arrival);

  // The engine request id of each choice (set before submitting).
  void set_engine_ids(std::vector<uint64_t> ids);
  const std::vector<uint64_t>& engine_ids() const { return engine_ids_; }

  // Applies one worker output of choice `index` (called on a detokenizer thread, in order
  // per choice). `abort_engine_request` is called when a stop string ends the choice.
  void on_output(int index, const wire::TokenOutput& output,
                 const std::function<void(uint64_t)>& abort_engine_request);
  // Ends choice `index` without output (its submit failed, or the client went away).
  void fail_choice(int index, const std::string& finish_reason, const std::string& error);

  // Called whenever deltas arrive or a choice ends, and once at once (outside the stream's
  // lock); what the front door wakes a connection with. nullptr: none.
  void set_on_change(std::function<void()> on_change);
  // The deltas since the last call (maybe none); never waits.
  std::vector<Choice> take_deltas();
  bool finished() const;

  // Final results (after finished()): choices with all text, ids, logprobs; usage.
  std::vector<Choice> final_choices() const;
  Usage usage() const;
  // The first worker error message, if any choice failed with "error".
  std::optional<std::string> error() const;
  std::vector<uint64_t> unfinished_engine_ids() const;

  const GenerationRequest& request() const { return request_; }
  const std::vector<int32_t>& prompt_ids() const { return prompt_ids_; }

 private:
  struct ChoiceState {
    std::unique_ptr<IncrementalDecoder> decoder;
    std::unique_ptr<StopMatcher> stop;
    Choice all;             // everything so far
    bool finished = false;
    int32_t num_cached_tokens = 0;  // as the worker reported it
    std::optional<Clock::time_point> last_token_time;
  };
  // Requires mu_. Appends text/ids/logprobs to the choice and queues the delta.
  void emit(int index, std::string text, std::vector<int32_t> ids, std::vector<TokenLogprobs> lps,
            const std::string& finish_reason);
  void finish_locked(int index, const std::string& finish_reason);
  void notify_change(std::unique_lock<std::mutex>& lock);
  TokenLogprobs token_logprobs(int32_t id, float logprob,
                               const std::vector<TokenLogprob>& top) const;

  const GenerationRequest request_;
  const std::vector<int32_t> prompt_ids_;
  const Tokenizer& tokenizer_;
  RouterMetrics& metrics_;
  const Clock::time_point arrival_;
  std::vector<uint64_t> engine_ids_;

  mutable std::mutex mu_;
  std::vector<ChoiceState> choices_;
  std::deque<Choice> deltas_;
  int unfinished_;
  std::optional<std::string> error_;
  std::shared_ptr<const std::function<void()>> on_change_;
};

}  // namespace strata::router
