// The answer to a generation request, as a LaterResponse (router/http_server.h) that the
// RequestStream wakes: streamed as OpenAI server-sent events (role/echo chunks first, then one
// chunk per delta, usage when asked for, [DONE]), or one JSON body when every choice is done.
// No thread waits for either. Past `deadline` the engine requests still running are aborted
// (their choices then end with "abort"); when the client goes away first, everything still
// running is aborted. `hold` (the caller's queue slot) is kept until the exchange ends.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "router/http_server.h"
#include "router/openai_response.h"
#include "router/request_stream.h"

namespace strata::router {

struct GenerationAnswer {
  std::shared_ptr<RequestStream> stream;
  ResponseContext ctx;
  Clock::time_point deadline;
  std::function<void(uint64_t)> abort_engine_request;
  std::shared_ptr<void> hold;
};

std::shared_ptr<LaterResponse> streamed_answer(GenerationAnswer answer);
std::shared_ptr<LaterResponse> whole_answer(GenerationAnswer answer);

}  // namespace strata::router
