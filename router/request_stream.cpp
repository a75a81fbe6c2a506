#include "router/request_stream.h"

#include <algorithm>

namespace strata::router {
namespace {

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

RequestStream::RequestStream(GenerationRequest request, std::vector<int32_t> prompt_ids,
                             const Tokenizer& tokenizer, RouterMetrics& metrics,
                             Clock::time_point arrival)
    : request_(std::move(request)),
      prompt_ids_(std::move(prompt_ids)),
      tokenizer_(tokenizer),
      metrics_(metrics),
      arrival_(arrival),
      choices_(static_cast<size_t>(request_.n)),
      unfinished_(request_.n) {
  for (int i = 0; i < request_.n; ++i) {
    ChoiceState& c = choices_[static_cast<size_t>(i)];
    // Decoding continues from the prompt so tokenizer rules that depend on the previous
    // token (the space after BOS, byte-fallback pieces) come out as a full decode would.
    c.decoder = std::make_unique<IncrementalDecoder>(tokenizer_, prompt_ids_, true);
    c.stop = std::make_unique<StopMatcher>(request_.stop_strings);
    c.all.index = i;
    if (request_.echo && request_.prompt_text) c.all.text = *request_.prompt_text;
  }
}

void RequestStream::set_engine_ids(std::vector<uint64_t> ids) { engine_ids_ = std::move(ids); }

TokenLogprobs RequestStream::token_logprobs(int32_t id, float logprob,
                                            const std::vector<TokenLogprob>& top) const {
  TokenLogprobs lp{.token_id = id, .token = tokenizer_.decode(std::vector<int32_t>{id}, false),
                   .logprob = logprob};
  for (const TokenLogprob& t : top) {
    lp.top.push_back({.token_id = t.id, .token = tokenizer_.decode(std::vector<int32_t>{t.id}, false),
                      .logprob = t.logprob});
  }
  return lp;
}

void RequestStream::emit(int index, std::string text, std::vector<int32_t> ids,
                         std::vector<TokenLogprobs> lps, const std::string& finish_reason) {
  ChoiceState& c = choices_[static_cast<size_t>(index)];
  if (text.empty() && ids.empty() && finish_reason.empty()) return;
  c.all.text += text;
  c.all.token_ids.insert(c.all.token_ids.end(), ids.begin(), ids.end());
  c.all.logprobs.insert(c.all.logprobs.end(), lps.begin(), lps.end());
  deltas_.push_back({.index = index, .text = std::move(text), .token_ids = std::move(ids),
                     .logprobs = std::move(lps), .finish_reason = finish_reason});
}

void RequestStream::finish_locked(int index, const std::string& finish_reason) {
  ChoiceState& c = choices_[static_cast<size_t>(index)];
  if (c.finished) return;
  c.finished = true;
  c.all.finish_reason = finish_reason;
  --unfinished_;
  metrics_.count_request(finish_reason);
  metrics_.observe_e2e(seconds_between(arrival_, Clock::now()));
}

void RequestStream::on_output(int index, const wire::TokenOutput& output,
                              const std::function<void(uint64_t)>& abort_engine_request) {
  std::unique_lock lock(mu_);
  ChoiceState& c = choices_[static_cast<size_t>(index)];
  if (c.finished) return;  // cut by a stop string: late tokens are dropped
  c.num_cached_tokens = output.num_cached_tokens;
  const auto now = Clock::now();
  if (!output.token_ids.empty()) {
    if (c.last_token_time) {
      metrics_.observe_itl(seconds_between(*c.last_token_time, now));
    } else {
      metrics_.observe_ttft(seconds_between(arrival_, now));
    }
    c.last_token_time = now;
  }
  std::string text;
  std::vector<int32_t> ids;
  std::vector<TokenLogprobs> lps;
  bool stopped = false;
  for (size_t i = 0; i < output.token_ids.size() && !stopped; ++i) {
    const int32_t id = output.token_ids[i];
    ids.push_back(id);
    metrics_.count_tokens(0, 1);
    if (request_.logprobs && i < output.logprobs.size()) {
      static const std::vector<TokenLogprob> kNone;
      lps.push_back(token_logprobs(id, output.logprobs[i],
                                   i < output.top_logprobs.size() ? output.top_logprobs[i] : kNone));
    }
    StopMatcher::Output out = c.stop->feed(c.decoder->push(id));
    text += out.text;
    stopped = out.matched;
  }
  std::string finish;
  if (stopped) {
    finish = "stop";
    abort_engine_request(output.id);
  } else if (output.finished()) {
    if (output.finish_reason == wire::kFinishError) {
      if (!error_) error_ = output.error.empty() ? "the worker group failed the request" : output.error;
      finish = "error";
    } else {
      StopMatcher::Output tail = c.stop->feed(c.decoder->flush());
      text += tail.text;
      if (!tail.matched) text += c.stop->flush();
      finish = tail.matched ? "stop" : output.finish_reason;
    }
  }
  emit(index, std::move(text), std::move(ids), std::move(lps), finish);
  if (!finish.empty()) finish_locked(index, finish);
  notify_change(lock);
}

void RequestStream::fail_choice(int index, const std::string& finish_reason, const std::string& error) {
  std::unique_lock lock(mu_);
  if (choices_[static_cast<size_t>(index)].finished) return;
  if (!error.empty() && !error_) error_ = error;
  emit(index, "", {}, {}, finish_reason);
  finish_locked(index, finish_reason);
  notify_change(lock);
}

void RequestStream::set_on_change(std::function<void()> on_change) {
  std::unique_lock lock(mu_);
  on_change_ = on_change ? std::make_shared<const std::function<void()>>(std::move(on_change)) : nullptr;
  notify_change(lock);  // what arrived before is there to be taken now
}

// Outside the lock: the listener may end the connection, which takes the lock again.
void RequestStream::notify_change(std::unique_lock<std::mutex>& lock) {
  const std::shared_ptr<const std::function<void()>> listener = on_change_;
  lock.unlock();
  if (listener) (*listener)();
}

std::vector<Choice> RequestStream::take_deltas() {
  std::lock_guard lock(mu_);
  std::vector<Choice> out(std::make_move_iterator(deltas_.begin()), std::make_move_iterator(deltas_.end()));
  deltas_.clear();
  return out;
}

bool RequestStream::finished() const {
  std::lock_guard lock(mu_);
  return unfinished_ == 0;
}

std::vector<Choice> RequestStream::final_choices() const {
  std::lock_guard lock(mu_);
  std::vector<Choice> out;
  for (const ChoiceState& c : choices_) out.push_back(c.all);
  return out;
}

Usage RequestStream::usage() const {
  std::lock_guard lock(mu_);
  Usage u{.prompt_tokens = static_cast<int64_t>(prompt_ids_.size())};
  for (const ChoiceState& c : choices_) u.completion_tokens += static_cast<int64_t>(c.all.token_ids.size());
  // The prompt is counted once: cached means cached for every choice.
  u.cached_tokens = u.prompt_tokens;
  for (const ChoiceState& c : choices_) u.cached_tokens = std::min<int64_t>(u.cached_tokens, c.num_cached_tokens);
  return u;
}

std::optional<std::string> RequestStream::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

std::vector<uint64_t> RequestStream::unfinished_engine_ids() const {
  std::lock_guard lock(mu_);
  std::vector<uint64_t> out;
  for (size_t i = 0; i < choices_.size() && i < engine_ids_.size(); ++i) {
    if (!choices_[i].finished) out.push_back(engine_ids_[i]);
  }
  return out;
}

}  // namespace strata::router
