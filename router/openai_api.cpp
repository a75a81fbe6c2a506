#include "router/openai_api.h"

#include <fmt/format.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>

#include "router/chat_request.h"
#include "router/json_body.h"
#include "router/json_fields.h"

namespace strata::router {
namespace {

// The chat fields a generation and a tokenize request both carry.
template <typename Request>
MaybeError parse_chat_fields_into(const nlohmann::json& body, std::string_view body_text, Request& req) {
  ChatFields chat;
  STRATA_RETURN_IF_API_ERROR(parse_chat_fields(body, body_text, &chat));
  req.messages = std::move(chat.messages);
  req.tools_json = std::move(chat.tools_json);
  req.chat_template_kwargs_json = std::move(chat.chat_template_kwargs_json);
  req.add_generation_prompt = chat.add_generation_prompt;
  return std::nullopt;
}

using nlohmann::json;

// `model`: optional; when given it must name the served model. OpenAI answers 404.
MaybeError check_model(const json& body, const ApiLimits& limits, std::string* model) {
  STRATA_RETURN_IF_API_ERROR(get_string(body, "model", model));
  if (model->empty() || *model == limits.served_model_name) return std::nullopt;
  return model_not_found_error(*model, limits.served_model_name);
}

MaybeError require_object(const json& body) {
  if (body.is_object()) return std::nullopt;
  return bad("", fmt::format("Request body must be a JSON object. Given: {}", describe_json(body)));
}

// A non-empty (unless allow_empty) array of ids in [0, vocab_size).
MaybeError to_token_ids(const json& v, const std::string& name, const ApiLimits& limits,
                        bool allow_empty, std::vector<int32_t>* out) {
  if (!v.is_array()) return type_error(name, "an array of token ids", v);
  if (v.empty() && !allow_empty) {
    return bad(name, fmt::format("`{}` must not be empty", name));
  }
  out->clear();
  out->reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    int64_t id = 0;
    STRATA_RETURN_IF_API_ERROR(to_int(v[i], fmt::format("{}[{}]", name, i), 0,
                                      int64_t{limits.vocab_size} - 1, &id,
                                      " (token ids must be below the vocabulary size)"));
    out->push_back(static_cast<int32_t>(id));
  }
  return std::nullopt;
}

// Completions `prompt`: "text", ["text"], [ids...], or [[ids...]].
MaybeError parse_prompt(const json& body, const ApiLimits& limits, GenerationRequest* req) {
  const json* p = field(body, "prompt");
  if (!p) {
    return bad("prompt",
               "`prompt` is required: a string, an array of one string, or an array of token "
               "ids");
  }
  // "" is a prompt, as OpenAI and llama.cpp's server take it: generation starts from the
  // BOS token (a tokenizer without one gets "encodes to no tokens" after tokenizing).
  auto text_prompt = [&](const json& s) -> MaybeError {
    req->prompt_text = s.get<std::string>();
    return std::nullopt;
  };
  if (p->is_string()) return text_prompt(*p);
  if (!p->is_array()) {
    return type_error("prompt", "a string, an array of one string, or an array of token ids", *p);
  }
  if (p->empty()) return bad("prompt", "`prompt` must not be empty");
  const json& first = (*p)[0];
  if (first.is_string() || first.is_array()) {
    if (p->size() > 1) {
      return bad("prompt",
                 fmt::format("batched prompts are not supported; send one prompt per request. "
                             "Given: an array of {} prompts",
                             p->size()));
    }
    if (first.is_string()) return text_prompt(first);
    std::vector<int32_t> ids;
    STRATA_RETURN_IF_API_ERROR(to_token_ids(first, "prompt[0]", limits, false, &ids));
    req->prompt_ids = std::move(ids);
    return std::nullopt;
  }
  std::vector<int32_t> ids;
  STRATA_RETURN_IF_API_ERROR(to_token_ids(*p, "prompt", limits, false, &ids));
  req->prompt_ids = std::move(ids);
  return std::nullopt;
}

MaybeError parse_stop(const json& body, const ApiLimits& limits, GenerationRequest* req) {
  if (const json* s = field(body, "stop")) {
    auto add = [&](const json& v, const std::string& name) -> MaybeError {
      if (!v.is_string()) return type_error(name, "a string", v);
      if (v.get_ref<const std::string&>().empty()) {
        return bad(name, fmt::format("`{}` must not be an empty string", name));
      }
      req->stop_strings.push_back(v.get<std::string>());
      return std::nullopt;
    };
    if (s->is_string()) {
      STRATA_RETURN_IF_API_ERROR(add(*s, "stop"));
    } else if (s->is_array()) {
      if (s->size() > static_cast<size_t>(limits.max_stop)) {
        return bad("stop", fmt::format("`stop` may hold at most {} strings. Given: {}",
                                       limits.max_stop, s->size()));
      }
      for (size_t i = 0; i < s->size(); ++i) {
        STRATA_RETURN_IF_API_ERROR(add((*s)[i], fmt::format("stop[{}]", i)));
      }
    } else {
      return type_error("stop", "a string or an array of strings", *s);
    }
  }
  if (const json* ids = field(body, "stop_token_ids")) {
    if (ids->is_array() && ids->size() > static_cast<size_t>(limits.max_stop_token_ids)) {
      return bad("stop_token_ids",
                 fmt::format("`stop_token_ids` may hold at most {} ids. Given: {}",
                             limits.max_stop_token_ids, ids->size()));
    }
    STRATA_RETURN_IF_API_ERROR(
        to_token_ids(*ids, "stop_token_ids", limits, true, &req->sampling.stop_token_ids));
  }
  return std::nullopt;
}

MaybeError parse_logprobs(const json& body, Route route, const ApiLimits& limits,
                          GenerationRequest* req) {
  if (route == Route::kCompletions) {
    std::optional<int64_t> n;
    STRATA_RETURN_IF_API_ERROR(get_int(body, "logprobs", 0, limits.max_completion_logprobs, &n));
    if (n) {
      req->logprobs = true;
      req->top_logprobs = static_cast<int32_t>(*n);
    }
    return std::nullopt;
  }
  STRATA_RETURN_IF_API_ERROR(get_bool(body, "logprobs", &req->logprobs));
  std::optional<int64_t> top;
  STRATA_RETURN_IF_API_ERROR(get_int(body, "top_logprobs", 0, limits.max_top_logprobs, &top));
  if (top) {
    if (*top > 0 && !req->logprobs) {
      return bad("top_logprobs", "`top_logprobs` needs `logprobs` set to true");
    }
    req->top_logprobs = static_cast<int32_t>(*top);
  }
  return std::nullopt;
}

// `seed`: an integer in [0, 2^63].
MaybeError parse_seed(const json& body, SamplingParams* sampling) {
  const json* v = field(body, "seed");
  if (!v) return std::nullopt;
  constexpr uint64_t kMax = uint64_t{1} << 63;
  auto range_error = [&] {
    return bad("seed",
               fmt::format("`seed` must be in [0, {}]. Given: {}", kMax, describe_json(*v)));
  };
  if (v->is_number_unsigned()) {
    if (v->get<uint64_t>() > kMax) return range_error();
    sampling->seed = v->get<uint64_t>();
  } else if (v->is_number_integer()) {
    return range_error();  // negative
  } else if (v->is_number_float()) {
    const double d = v->get<double>();
    if (d != std::floor(d)) return type_error("seed", "an integer", *v);
    if (!(d >= 0.0 && d <= static_cast<double>(kMax))) return range_error();
    sampling->seed = static_cast<uint64_t>(d);
  } else {
    return type_error("seed", "an integer", *v);
  }
  return std::nullopt;
}

// Known OpenAI fields whose effect strata does not implement: refused, not ignored.
MaybeError reject_unsupported(const json& body, Route route, int32_t n) {
  if (const json* v = field(body, "logit_bias")) {
    if (!v->is_object()) return type_error("logit_bias", "an object", *v);
    if (!v->empty()) return bad("logit_bias", "`logit_bias` is not supported; remove it");
  }
  if (const json* v = field(body, "best_of")) {
    int64_t best_of = 0;
    STRATA_RETURN_IF_API_ERROR(to_int(*v, "best_of", 1, 1 << 20, &best_of));
    if (best_of < n) {
      return bad("best_of", fmt::format("`best_of` must be >= `n`. Given: {} with n = {}",
                                        best_of, n));
    }
    if (best_of > n) {
      return bad("best_of", fmt::format("`best_of` greater than `n` is not supported. Given: "
                                        "{} with n = {}",
                                        best_of, n));
    }
  }
  if (const json* v = field(body, "response_format")) {
    const json* type = v->is_object() ? field(*v, "type") : nullptr;
    if (!type || !type->is_string() || type->get<std::string>() != "text") {
      return bad("response_format",
                 fmt::format("only `response_format` {{\"type\": \"text\"}} is supported. "
                             "Given: {}",
                             describe_json(*v)));
    }
  }
  if (route == Route::kCompletions) {
    std::string suffix;
    STRATA_RETURN_IF_API_ERROR(get_string(body, "suffix", &suffix));
    if (!suffix.empty()) return bad("suffix", "`suffix` is not supported; remove it");
  }
  return std::nullopt;
}

// The backticked field name that starts a SamplingParams::validate message.
std::string param_of_message(const std::string& message) {
  const size_t open = message.find('`');
  if (open == std::string::npos) return "";
  const size_t close = message.find('`', open + 1);
  if (close == std::string::npos) return "";
  return message.substr(open + 1, close - open - 1);
}

MaybeError parse_sampling(const json& body, Route route, GenerationRequest* req) {
  SamplingParams& s = req->sampling;
  // Only the type's range here: whether max_tokens fits the context window depends on the
  // prompt's token count, so fit_to_context() checks it after tokenizing.
  std::optional<int64_t> max_tokens;
  // Chat: max_completion_tokens is OpenAI's newer name and wins when both are given.
  if (route == Route::kChatCompletions) {
    STRATA_RETURN_IF_API_ERROR(get_int(body, "max_completion_tokens", 1, INT32_MAX, &max_tokens));
  }
  if (!max_tokens) STRATA_RETURN_IF_API_ERROR(get_int(body, "max_tokens", 1, INT32_MAX, &max_tokens));
  if (max_tokens) {
    s.max_tokens = static_cast<int32_t>(*max_tokens);
    req->max_tokens_given = true;
  }
  bool temperature_given = false;
  STRATA_RETURN_IF_API_ERROR(get_float(body, "temperature", &s.temperature, &temperature_given));
  // OpenAI's range; SamplingParams alone would allow up to 100.
  if (temperature_given && !(s.temperature >= 0.0f && s.temperature <= 2.0f)) {
    return bad("temperature",
               fmt::format("`temperature` must be in [0, 2] (0 for greedy decoding). Given: {}",
                           describe_json(body.at("temperature"))));
  }
  STRATA_RETURN_IF_API_ERROR(get_float(body, "top_p", &s.top_p));
  std::optional<int64_t> top_k;
  STRATA_RETURN_IF_API_ERROR(
      get_int(body, "top_k", -1, INT32_MAX, &top_k, " (-1 or 0 to disable it)"));
  if (top_k) s.top_k = static_cast<int32_t>(*top_k);
  STRATA_RETURN_IF_API_ERROR(get_float(body, "min_p", &s.min_p));
  STRATA_RETURN_IF_API_ERROR(get_float(body, "repetition_penalty", &s.repetition_penalty));
  STRATA_RETURN_IF_API_ERROR(get_float(body, "presence_penalty", &s.presence_penalty));
  STRATA_RETURN_IF_API_ERROR(get_float(body, "frequency_penalty", &s.frequency_penalty));
  STRATA_RETURN_IF_API_ERROR(parse_seed(body, &s));
  STRATA_RETURN_IF_API_ERROR(get_bool(body, "ignore_eos", &s.ignore_eos));
  STRATA_RETURN_IF_API_ERROR(get_bool(body, "speculative", &s.speculative));
  std::optional<int64_t> stop_after;
  STRATA_RETURN_IF_API_ERROR(get_int(body, "stop_after_tokens", 1, INT32_MAX, &stop_after));
  if (stop_after) s.stop_after_tokens = static_cast<int32_t>(*stop_after);
  return std::nullopt;
}

MaybeError parse_stream(const json& body, GenerationRequest* req) {
  STRATA_RETURN_IF_API_ERROR(get_bool(body, "stream", &req->stream));
  if (const json* opts = field(body, "stream_options")) {
    if (!opts->is_object()) return type_error("stream_options", "an object", *opts);
    if (!req->stream) {
      return bad("stream_options", "`stream_options` is only allowed when `stream` is true");
    }
    if (const json* v = field(*opts, "include_usage")) {
      if (!v->is_boolean()) {
        return type_error("stream_options.include_usage", "a boolean (true or false)", *v);
      }
      req->include_usage = v->get<bool>();
    }
  }
  return std::nullopt;
}

std::variant<GenerationRequest, ApiError> parse_generation_impl(std::string_view body_text,
                                                                Route route,
                                                                const ApiLimits& limits) {
  auto parsed = parse_json_body(body_text);
  if (auto* e = std::get_if<ApiError>(&parsed)) return std::move(*e);
  const json& body = std::get<json>(parsed);
  STRATA_RETURN_IF_API_ERROR(require_object(body));

  GenerationRequest req;
  req.route = route;
  STRATA_RETURN_IF_API_ERROR(check_model(body, limits, &req.model));
  if (route == Route::kCompletions) {
    STRATA_RETURN_IF_API_ERROR(parse_prompt(body, limits, &req));
  } else {
    STRATA_RETURN_IF_API_ERROR(parse_chat_fields_into(body, body_text, req));
  }
  STRATA_RETURN_IF_API_ERROR(parse_sampling(body, route, &req));
  std::optional<int64_t> n;
  STRATA_RETURN_IF_API_ERROR(get_int(body, "n", 1, limits.max_n, &n));
  if (n) req.n = static_cast<int32_t>(*n);
  STRATA_RETURN_IF_API_ERROR(parse_stop(body, limits, &req));
  STRATA_RETURN_IF_API_ERROR(parse_logprobs(body, route, limits, &req));
  STRATA_RETURN_IF_API_ERROR(parse_stream(body, &req));
  if (route == Route::kCompletions) {
    STRATA_RETURN_IF_API_ERROR(get_bool(body, "echo", &req.echo));
    if (req.echo && req.logprobs) {
      return bad("echo", "`echo` together with `logprobs` (prompt logprobs) is not supported");
    }
  }
  STRATA_RETURN_IF_API_ERROR(get_bool(body, "return_token_ids", &req.return_token_ids));
  STRATA_RETURN_IF_API_ERROR(get_string(body, "user", &req.user));
  std::optional<int64_t> priority;
  STRATA_RETURN_IF_API_ERROR(get_int(body, "priority", -1000000, 1000000, &priority));
  if (priority) req.priority = static_cast<int32_t>(*priority);
  float timeout = 0;
  bool timeout_given = false;
  STRATA_RETURN_IF_API_ERROR(get_float(body, "timeout", &timeout, &timeout_given));
  if (timeout_given) {
    if (!(timeout > 0 && timeout <= 86400)) {
      return bad("timeout", fmt::format("`timeout` must be in (0, 86400] seconds. Given: {}",
                                        describe_json(body.at("timeout"))));
    }
    req.timeout_s = timeout;
  }
  STRATA_RETURN_IF_API_ERROR(reject_unsupported(body, route, req.n));

  req.sampling.logprobs = req.logprobs ? req.top_logprobs : -1;
  if (Status st = req.sampling.validate(); !st.ok()) {
    return bad(param_of_message(st.message()), st.message());
  }
  return req;
}

// The common start of the tokenizer routes: a JSON object whose `model`, if given, is ours.
std::variant<json, ApiError> parse_object_for_model(std::string_view body_text, const ApiLimits& limits) {
  auto parsed = parse_json_body(body_text);
  if (auto* e = std::get_if<ApiError>(&parsed)) return std::move(*e);
  json body = std::move(std::get<json>(parsed));
  STRATA_RETURN_IF_API_ERROR(require_object(body));
  std::string model;
  STRATA_RETURN_IF_API_ERROR(check_model(body, limits, &model));
  return body;
}

std::variant<TokenizeRequest, ApiError> parse_tokenize_impl(std::string_view body_text,
                                                            const ApiLimits& limits) {
  auto parsed = parse_object_for_model(body_text, limits);
  if (auto* e = std::get_if<ApiError>(&parsed)) return std::move(*e);
  const json& body = std::get<json>(parsed);
  TokenizeRequest req;
  const bool has_prompt = field(body, "prompt") != nullptr;
  const bool has_messages = field(body, "messages") != nullptr;
  if (has_prompt == has_messages) {
    return bad(has_prompt ? "messages" : "prompt",
               "give exactly one of `prompt` (a string) and `messages` (a chat)");
  }
  if (has_prompt) {
    std::string prompt;
    STRATA_RETURN_IF_API_ERROR(get_string(body, "prompt", &prompt));
    req.prompt = std::move(prompt);
  } else {
    STRATA_RETURN_IF_API_ERROR(parse_chat_fields_into(body, body_text, req));
    req.add_special_tokens = false;
  }
  STRATA_RETURN_IF_API_ERROR(get_bool(body, "add_special_tokens", &req.add_special_tokens));
  return req;
}

std::variant<DetokenizeRequest, ApiError> parse_detokenize_impl(std::string_view body_text,
                                                                const ApiLimits& limits) {
  auto parsed = parse_object_for_model(body_text, limits);
  if (auto* e = std::get_if<ApiError>(&parsed)) return std::move(*e);
  const json& body = std::get<json>(parsed);
  const json* tokens = field(body, "tokens");
  if (!tokens) return bad("tokens", "`tokens` is required: an array of token ids");
  DetokenizeRequest req;
  STRATA_RETURN_IF_API_ERROR(to_token_ids(*tokens, "tokens", limits, true, &req.token_ids));
  return req;
}

}  // namespace

std::optional<ApiError> fit_to_context(GenerationRequest& request, int64_t prompt_tokens,
                                       int64_t max_model_len) {
  if (!request.max_tokens_given) {
    const int64_t rest = std::clamp<int64_t>(max_model_len - prompt_tokens, 1, INT32_MAX);
    request.sampling.max_tokens = static_cast<int32_t>(rest);
  }
  if (prompt_tokens + request.sampling.max_tokens > max_model_len) {
    return context_length_error(prompt_tokens, request.sampling.max_tokens, max_model_len);
  }
  return std::nullopt;
}

// The public entry points never throw: anything that escapes the parsers (bad_alloc, a bug)
// becomes a 500.
template <typename Parse>
auto never_throws(Parse parse) -> decltype(parse()) {
  try {
    return parse();
  } catch (const std::exception& e) {
    return internal_server_error(e.what());
  }
}

std::variant<GenerationRequest, ApiError> parse_generation_request(std::string_view body,
                                                                   Route route,
                                                                   const ApiLimits& limits) {
  return never_throws([&] { return parse_generation_impl(body, route, limits); });
}

std::variant<TokenizeRequest, ApiError> parse_tokenize_request(std::string_view body,
                                                               const ApiLimits& limits) {
  return never_throws([&] { return parse_tokenize_impl(body, limits); });
}

std::variant<DetokenizeRequest, ApiError> parse_detokenize_request(std::string_view body,
                                                                   const ApiLimits& limits) {
  return never_throws([&] { return parse_detokenize_impl(body, limits); });
}

}  // namespace strata::router
