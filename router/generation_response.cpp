#include "router/generation_response.h"

#include <atomic>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "router/api_error.h"

namespace strata::router {
namespace {

// What both answers share: the stream, its deadline, and stopping what still runs.
class GenerationLater : public LaterResponse {
 public:
  explicit GenerationLater(GenerationAnswer answer) : a_(std::move(answer)) {}

  void start(std::function<void()> wake) override { a_.stream->set_on_change(std::move(wake)); }
  Clock::time_point deadline() const override { return a_.deadline; }
  void expire() override { abort_running(); }
  void end(bool completed) override {
    if (ended_.exchange(true)) return;
    a_.stream->set_on_change(nullptr);
    // The client went away (or the stream ended): stop what still runs.
    if (!completed || !a_.stream->finished()) abort_running();
    a_.hold.reset();
  }

 protected:
  void abort_running() {
    for (uint64_t id : a_.stream->unfinished_engine_ids()) a_.abort_engine_request(id);
  }

  GenerationAnswer a_;
  std::atomic<bool> ended_{false};
};

class StreamedAnswer final : public GenerationLater {
 public:
  explicit StreamedAnswer(GenerationAnswer answer)
      : GenerationLater(std::move(answer)), text_offsets_(static_cast<size_t>(a_.stream->request().n), 0) {}

  bool streamed() const override { return true; }

  bool produce(HttpResponse& res) override {
    if (!started_) {
      started_ = true;
      write_start(res.body);
    }
    // Read before taking the deltas: a choice that finishes between taking them and a later
    // finished() check would have its last delta dropped behind [DONE].
    const bool finished = a_.stream->finished();
    for (Choice& delta : a_.stream->take_deltas()) res.body += delta_event(delta);
    if (!finished) return false;
    if (a_.ctx.include_usage) res.body += sse_event(usage_chunk(a_.ctx, a_.stream->usage()));
    res.body += sse_done();
    return true;
  }

 private:
  // Chat: each choice's role chunk; completions with `echo`: the prompt text. The prompt's
  // token ids go with choice 0 only.
  void write_start(std::string& out) {
    const GenerationRequest& r = a_.stream->request();
    for (int i = 0; i < r.n; ++i) {
      const auto prompt = i == 0 ? std::span<const int32_t>(a_.stream->prompt_ids()) : std::span<const int32_t>();
      if (a_.ctx.route == Route::kChatCompletions) {
        out += sse_event(chat_first_chunk(a_.ctx, i, prompt));
      } else if (r.echo && r.prompt_text) {
        const Choice echo{.index = i, .text = *r.prompt_text};
        out += sse_event(completion_chunk(a_.ctx, echo, 0, prompt));
      }
    }
  }

  std::string delta_event(const Choice& delta) {
    if (delta.finish_reason == "error") {
      ApiError e = no_worker_error();
      e.message = a_.stream->error().value_or("the worker group failed the request");
      return sse_event(error_body(e));
    }
    if (a_.ctx.route == Route::kChatCompletions) return sse_event(chat_chunk(a_.ctx, delta));
    // Completions chunks carry text offsets in characters, not bytes.
    auto& offset = text_offsets_[static_cast<size_t>(delta.index)];
    std::string chunk = completion_chunk(a_.ctx, delta, offset);
    for (unsigned char c : delta.text) offset += (c & 0xC0) != 0x80;
    return sse_event(chunk);
  }

  bool started_ = false;
  std::vector<int64_t> text_offsets_;
};

class WholeAnswer final : public GenerationLater {
 public:
  using GenerationLater::GenerationLater;

  bool streamed() const override { return false; }

  bool produce(HttpResponse& res) override {
    if (!a_.stream->finished()) return false;
    if (auto error = a_.stream->error()) {
      ApiError e = no_worker_error();
      e.message = *error;
      res.status = e.http_status;
      res.set_header("Retry-After", "1");
      res.body = error_body(e);
      return true;
    }
    const auto choices = a_.stream->final_choices();
    const Usage usage = a_.stream->usage();
    const RequestStream& s = *a_.stream;
    res.body = a_.ctx.route == Route::kCompletions ? completion_response(a_.ctx, choices, usage, s.prompt_ids())
                                                   : chat_response(a_.ctx, choices, usage, s.prompt_ids());
    return true;
  }
};

}  // namespace

std::shared_ptr<LaterResponse> streamed_answer(GenerationAnswer answer) {
  return std::make_shared<StreamedAnswer>(std::move(answer));
}

std::shared_ptr<LaterResponse> whole_answer(GenerationAnswer answer) {
  return std::make_shared<WholeAnswer>(std::move(answer));
}

}  // namespace strata::router
