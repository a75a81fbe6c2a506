#include "router/openai_response.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "common/utf8.h"

namespace strata::router {
namespace {

using ojson = nlohmann::ordered_json;

std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

double finite_logprob(float logprob) {
  return std::isfinite(logprob) ? static_cast<double>(logprob) : -9999.0;
}

ojson nullable(const std::string& s) { return s.empty() ? ojson(nullptr) : ojson(s); }

std::string text(std::string_view s) { return utf8::to_valid_lossy(s); }

// Unicode code points in s (invalid bytes count one each).
int64_t code_points(std::string_view s) {
  int64_t n = 0;
  for (size_t pos = 0; pos < s.size(); pos += utf8::char_length(s, pos)) ++n;
  return n;
}

ojson usage_json(const Usage& usage) {
  ojson u;
  u["prompt_tokens"] = usage.prompt_tokens;
  u["completion_tokens"] = usage.completion_tokens;
  u["total_tokens"] = usage.total_tokens();
  u["prompt_tokens_details"] = ojson{{"cached_tokens", usage.cached_tokens}};
  return u;
}

ojson header(const ResponseContext& ctx, std::string_view object) {
  ojson j;
  j["id"] = ctx.id;
  j["object"] = object;
  j["created"] = ctx.created;
  j["model"] = ctx.model;
  return j;
}

// Completions logprobs: parallel arrays, one entry per generated token.
ojson completion_logprobs(const std::vector<TokenLogprobs>& logprobs, int64_t text_offset) {
  ojson tokens = ojson::array(), token_logprobs = ojson::array(), top = ojson::array(),
        offsets = ojson::array();
  for (const TokenLogprobs& lp : logprobs) {
    const std::string token = text(lp.token);
    tokens.push_back(token);
    token_logprobs.push_back(finite_logprob(lp.logprob));
    if (lp.top.empty()) {
      top.push_back(nullptr);
    } else {
      ojson entry = ojson::object();
      for (const TopLogprob& t : lp.top) entry[text(t.token)] = finite_logprob(t.logprob);
      top.push_back(std::move(entry));
    }
    offsets.push_back(text_offset);
    text_offset += code_points(lp.token);
  }
  ojson j;
  j["tokens"] = std::move(tokens);
  j["token_logprobs"] = std::move(token_logprobs);
  j["top_logprobs"] = std::move(top);
  j["text_offset"] = std::move(offsets);
  return j;
}

ojson token_bytes(std::string_view token) {
  ojson bytes = ojson::array();
  for (char c : token) bytes.push_back(static_cast<unsigned char>(c));
  return bytes;
}

// Chat logprobs: {"content": [{token, logprob, bytes, top_logprobs: [...]}]}.
ojson chat_logprobs(const std::vector<TokenLogprobs>& logprobs) {
  ojson content = ojson::array();
  for (const TokenLogprobs& lp : logprobs) {
    ojson entry;
    entry["token"] = text(lp.token);
    entry["logprob"] = finite_logprob(lp.logprob);
    entry["bytes"] = token_bytes(lp.token);
    ojson top = ojson::array();
    for (const TopLogprob& t : lp.top) {
      ojson te;
      te["token"] = text(t.token);
      te["logprob"] = finite_logprob(t.logprob);
      te["bytes"] = token_bytes(t.token);
      top.push_back(std::move(te));
    }
    entry["top_logprobs"] = std::move(top);
    content.push_back(std::move(entry));
  }
  ojson j;
  j["content"] = std::move(content);
  return j;
}

ojson completion_choice(const ResponseContext& ctx, const Choice& c, int64_t text_offset) {
  ojson j;
  j["index"] = c.index;
  j["text"] = text(c.text);
  j["logprobs"] = ctx.logprobs ? completion_logprobs(c.logprobs, text_offset) : ojson(nullptr);
  j["finish_reason"] = nullable(c.finish_reason);
  if (ctx.return_token_ids) j["token_ids"] = c.token_ids;
  return j;
}

ojson chat_choice_tail(const ResponseContext& ctx, const Choice& c, ojson j) {
  j["logprobs"] = ctx.logprobs ? chat_logprobs(c.logprobs) : ojson(nullptr);
  j["finish_reason"] = nullable(c.finish_reason);
  if (ctx.return_token_ids) j["token_ids"] = c.token_ids;
  return j;
}

void add_prompt_ids(const ResponseContext& ctx, std::span<const int32_t> ids, ojson* j) {
  if (ctx.return_token_ids && !ids.empty()) {
    (*j)["prompt_token_ids"] = std::vector<int32_t>(ids.begin(), ids.end());
  }
}

void add_null_usage(const ResponseContext& ctx, ojson* j) {
  if (ctx.include_usage) (*j)["usage"] = nullptr;
}

}  // namespace

std::string make_response_id(Route route) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}{:016x}{:016x}", route == Route::kChatCompletions ? "chatcmpl-" : "cmpl-",
                     rng(), rng());
}

ResponseContext make_response_context(const GenerationRequest& request, std::string model,
                                      int64_t created) {
  return ResponseContext{.route = request.route,
                         .id = make_response_id(request.route),
                         .created = created,
                         .model = std::move(model),
                         .logprobs = request.logprobs,
                         .return_token_ids = request.return_token_ids,
                         .include_usage = request.stream && request.include_usage};
}

std::string completion_response(const ResponseContext& ctx, std::span<const Choice> choices,
                                const Usage& usage, std::span<const int32_t> prompt_token_ids) {
  ojson j = header(ctx, "text_completion");
  ojson arr = ojson::array();
  for (const Choice& c : choices) arr.push_back(completion_choice(ctx, c, 0));
  j["choices"] = std::move(arr);
  j["usage"] = usage_json(usage);
  add_prompt_ids(ctx, prompt_token_ids, &j);
  return dump(j);
}

std::string chat_response(const ResponseContext& ctx, std::span<const Choice> choices,
                          const Usage& usage, std::span<const int32_t> prompt_token_ids) {
  ojson j = header(ctx, "chat.completion");
  ojson arr = ojson::array();
  for (const Choice& c : choices) {
    ojson message;
    message["role"] = "assistant";
    message["content"] = text(c.text);
    ojson choice;
    choice["index"] = c.index;
    choice["message"] = std::move(message);
    arr.push_back(chat_choice_tail(ctx, c, std::move(choice)));
  }
  j["choices"] = std::move(arr);
  j["usage"] = usage_json(usage);
  add_prompt_ids(ctx, prompt_token_ids, &j);
  return dump(j);
}

std::string completion_chunk(const ResponseContext& ctx, const Choice& delta, int64_t text_offset,
                             std::span<const int32_t> prompt_token_ids) {
  ojson j = header(ctx, "text_completion");
  j["choices"] = ojson::array({completion_choice(ctx, delta, text_offset)});
  add_null_usage(ctx, &j);
  add_prompt_ids(ctx, prompt_token_ids, &j);
  return dump(j);
}

std::string chat_first_chunk(const ResponseContext& ctx, int32_t index,
                             std::span<const int32_t> prompt_token_ids) {
  ojson j = header(ctx, "chat.completion.chunk");
  ojson d;
  d["role"] = "assistant";
  d["content"] = "";
  ojson choice;
  choice["index"] = index;
  choice["delta"] = std::move(d);
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = nullptr;
  j["choices"] = ojson::array({std::move(choice)});
  add_null_usage(ctx, &j);
  add_prompt_ids(ctx, prompt_token_ids, &j);
  return dump(j);
}

std::string chat_chunk(const ResponseContext& ctx, const Choice& delta) {
  ojson j = header(ctx, "chat.completion.chunk");
  ojson d = ojson::object();
  if (!delta.text.empty() || delta.finish_reason.empty()) d["content"] = text(delta.text);
  ojson choice;
  choice["index"] = delta.index;
  choice["delta"] = std::move(d);
  j["choices"] = ojson::array({chat_choice_tail(ctx, delta, std::move(choice))});
  add_null_usage(ctx, &j);
  return dump(j);
}

std::string usage_chunk(const ResponseContext& ctx, const Usage& usage) {
  ojson j = header(
      ctx, ctx.route == Route::kChatCompletions ? "chat.completion.chunk" : "text_completion");
  j["choices"] = ojson::array();
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string sse_event(std::string_view json_text) {
  std::string out;
  out.reserve(json_text.size() + 8);
  out += "data: ";
  out += json_text;
  out += "\n\n";
  return out;
}

std::string sse_done() { return "data: [DONE]\n\n"; }

namespace {

ojson model_object(std::string_view served_model_name, int64_t created, int64_t max_model_len) {
  ojson model;
  model["id"] = text(served_model_name);
  model["object"] = "model";
  model["created"] = created;
  model["owned_by"] = "strata";
  model["root"] = text(served_model_name);
  model["parent"] = nullptr;
  model["max_model_len"] = max_model_len;
  return model;
}

}  // namespace

std::string models_response(std::string_view served_model_name, int64_t created,
                            int64_t max_model_len) {
  ojson j;
  j["object"] = "list";
  j["data"] = ojson::array({model_object(served_model_name, created, max_model_len)});
  return dump(j);
}

std::string model_response(std::string_view served_model_name, int64_t created,
                           int64_t max_model_len) {
  return dump(model_object(served_model_name, created, max_model_len));
}

std::string tokenize_response(std::span<const int32_t> token_ids, int64_t max_model_len) {
  ojson j;
  j["tokens"] = std::vector<int32_t>(token_ids.begin(), token_ids.end());
  j["count"] = token_ids.size();
  j["max_model_len"] = max_model_len;
  return dump(j);
}

std::string detokenize_response(std::string_view s) {
  ojson j;
  j["prompt"] = text(s);
  return dump(j);
}

}  // namespace strata::router
