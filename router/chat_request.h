// The chat fields of a request body (/v1/chat/completions and /tokenize's messages form):
// messages with their tool calls, tools, tool_choice, chat_template_kwargs and
// add_generation_prompt, validated into what render_chat takes.
//
// Design note: nlohmann::json keeps object keys sorted, but a template that prints `tools`
// with tojson must see them in the request's order (Python's json.loads keeps it, and so
// vLLM's prompt does). So validation reads the sorted DOM, and the parts a template prints
// verbatim (tool schemas, tool calls, kwargs) are taken from a second, order-keeping parse of
// the body, done only when the body has them.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "router/api_types.h"
#include "router/json_fields.h"

namespace strata::router {

struct ChatFields {
  std::vector<ChatMessage> messages;
  std::string tools_json;                 // vLLM's normalized tool dicts, or "" when absent
  std::string chat_template_kwargs_json;  // an object, or ""
  bool add_generation_prompt = true;
};

// `messages` is required (a non-empty array); content is a string, an array of text parts,
// or (assistant turns with tool_calls) null/absent. tool_calls[].function.arguments must be
// a JSON text: the template gets it parsed. tools[] are {type: "function", function: {name,
// description?, parameters?}}; tool_choice may only be "auto" or "none" (strata does not
// constrain output to tool calls). Errors are 400s naming the field.
MaybeError parse_chat_fields(const nlohmann::json& body, std::string_view body_text, ChatFields* out);

}  // namespace strata::router
