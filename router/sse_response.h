// Streamed generation responses: a RequestStream's deltas as OpenAI server-sent events
// (role/echo chunks first, then one chunk per delta, usage when asked for, [DONE]).
//
// Design note. httplib calls the content provider on the connection's thread until the
// stream ends or the client goes away; each call waits at most 50 ms for deltas, so the
// deadline and a vanished client are noticed within that. When the exchange ends for any
// reason, whatever still runs is aborted: a client that disconnects stops its engine work.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "router/openai_response.h"
#include "router/request_stream.h"

namespace httplib {
class Response;
}  // namespace httplib

namespace strata::router {

// Makes `res` stream `stream` as SSE. Past `deadline` the engine requests still running are
// aborted through `abort_engine_request` (their choices then end with "abort"). `hold` is
// kept until the exchange ends (the caller's queue slot).
void stream_response(httplib::Response& res, std::shared_ptr<RequestStream> stream,
                     ResponseContext ctx, Clock::time_point deadline,
                     std::function<void(uint64_t)> abort_engine_request,
                     std::shared_ptr<void> hold);

}  // namespace strata::router
