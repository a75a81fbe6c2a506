#include "router/sse_response.h"

#include <httplib.h>

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "router/api_error.h"

namespace strata::router {
namespace {

// The state of one SSE response across calls of its content provider.
class SseWriter {
 public:
  SseWriter(std::shared_ptr<RequestStream> stream, ResponseContext ctx,
            Clock::time_point deadline, std::function<void(uint64_t)> abort_engine_request)
      : stream_(std::move(stream)),
        ctx_(std::move(ctx)),
        deadline_(deadline),
        abort_(std::move(abort_engine_request)),
        text_offsets_(static_cast<size_t>(stream_->request().n), 0) {}

  // One provider call; false when the client is gone.
  bool provide(httplib::DataSink& sink) {
    if (!started_) {
      started_ = true;
      if (!write_start(sink)) return false;
    }
    if (Clock::now() > deadline_) abort_running();
    // Read before taking the deltas: a choice that finishes between wait_deltas() and a
    // later finished() check would have its last delta dropped behind [DONE].
    const bool finished = stream_->finished();
    for (Choice& delta : stream_->wait_deltas(std::chrono::milliseconds(50))) {
      if (!write(sink, delta_event(delta))) return false;
    }
    if (!finished) return true;
    if (ctx_.include_usage && !write(sink, sse_event(usage_chunk(ctx_, stream_->usage())))) {
      return false;
    }
    if (!write(sink, sse_done())) return false;
    sink.done();
    return true;
  }

  void abort_running() {
    for (uint64_t id : stream_->unfinished_engine_ids()) abort_(id);
  }

 private:
  static bool write(httplib::DataSink& sink, const std::string& s) {
    return sink.write(s.data(), s.size());
  }

  // Chat: each choice's role chunk; completions with `echo`: the prompt text. The prompt's
  // token ids go with choice 0 only.
  bool write_start(httplib::DataSink& sink) {
    const GenerationRequest& r = stream_->request();
    for (int i = 0; i < r.n; ++i) {
      const auto prompt = i == 0 ? std::span<const int32_t>(stream_->prompt_ids())
                                 : std::span<const int32_t>();
      if (ctx_.route == Route::kChatCompletions) {
        if (!write(sink, sse_event(chat_first_chunk(ctx_, i, prompt)))) return false;
      } else if (r.echo && r.prompt_text) {
        const Choice echo{.index = i, .text = *r.prompt_text};
        if (!write(sink, sse_event(completion_chunk(ctx_, echo, 0, prompt)))) return false;
      }
    }
    return true;
  }

  std::string delta_event(const Choice& delta) {
    if (delta.finish_reason == "error") {
      ApiError e = no_worker_error();
      e.message = stream_->error().value_or("the worker group failed the request");
      return sse_event(error_body(e));
    }
    if (ctx_.route == Route::kChatCompletions) return sse_event(chat_chunk(ctx_, delta));
    // Completions chunks carry text offsets in characters, not bytes.
    auto& offset = text_offsets_[static_cast<size_t>(delta.index)];
    std::string chunk = completion_chunk(ctx_, delta, offset);
    for (unsigned char c : delta.text) offset += (c & 0xC0) != 0x80;
    return sse_event(chunk);
  }

  const std::shared_ptr<RequestStream> stream_;
  const ResponseContext ctx_;
  const Clock::time_point deadline_;
  const std::function<void(uint64_t)> abort_;
  bool started_ = false;
  std::vector<int64_t> text_offsets_;
};

}  // namespace

void stream_response(httplib::Response& res, std::shared_ptr<RequestStream> stream,
                     ResponseContext ctx, Clock::time_point deadline,
                     std::function<void(uint64_t)> abort_engine_request,
                     std::shared_ptr<void> hold) {
  auto writer = std::make_shared<SseWriter>(std::move(stream), std::move(ctx), deadline,
                                            std::move(abort_engine_request));
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [writer](size_t, httplib::DataSink& sink) { return writer->provide(sink); },
      // The client went away (or the stream ended): stop what still runs.
      [writer, hold](bool) { writer->abort_running(); });
}

}  // namespace strata::router
