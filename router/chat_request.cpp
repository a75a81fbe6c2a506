#include "router/chat_request.h"

#include <fmt/format.h>

#include "router/json_body.h"

namespace strata::router {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

bool is_known_role(const std::string& role) {
  return role == "system" || role == "user" || role == "assistant" || role == "tool" ||
         role == "developer";
}

// A chat message's `content` given as an array of {type: "text", text} parts, joined with
// "\n" (as vLLM joins text parts).
MaybeError parse_content_parts(const json& content, const std::string& content_name, ChatMessage* out) {
  for (size_t j = 0; j < content.size(); ++j) {
    const json& part = content[j];
    const std::string part_name = fmt::format("{}[{}]", content_name, j);
    if (!part.is_object()) {
      return type_error(part_name, "an object {\"type\": \"text\", \"text\": ...}", part);
    }
    const json* type = field(part, "type");
    if (!type || !type->is_string() || type->get<std::string>() != "text") {
      return bad(part_name + ".type",
                 fmt::format("`{}.type` must be \"text\" (strata serves text-only models). "
                             "Given: {}",
                             part_name, type ? describe_json(*type) : "nothing"));
    }
    const json* text = field(part, "text");
    if (!text || !text->is_string()) {
      return bad(part_name + ".text",
                 fmt::format("`{}.text` must be a string. Given: {}", part_name,
                             text ? describe_json(*text) : "nothing"));
    }
    if (j > 0) out->content += '\n';
    out->content += text->get<std::string>();
    out->content_parts.push_back(text->get<std::string>());
  }
  out->content_is_parts = true;
  return std::nullopt;
}

MaybeError check_tool_calls(const json& calls, const std::string& name) {
  if (!calls.is_array()) return type_error(name, "an array of tool calls", calls);
  for (size_t k = 0; k < calls.size(); ++k) {
    const std::string call_name = fmt::format("{}[{}]", name, k);
    const json& call = calls[k];
    if (!call.is_object()) return type_error(call_name, "an object {\"id\", \"type\", \"function\"}", call);
    const json* function = field(call, "function");
    if (!function || !function->is_object()) {
      return bad(call_name + ".function",
                 fmt::format("`{}.function` must be an object {{\"name\", \"arguments\"}}", call_name));
    }
    const json* fname = field(*function, "name");
    if (!fname || !fname->is_string()) {
      return bad(call_name + ".function.name", fmt::format("`{}.function.name` must be a string", call_name));
    }
    const json* arguments = field(*function, "arguments");
    const std::string args_name = call_name + ".function.arguments";
    if (!arguments || !arguments->is_string()) return type_error(args_name, "a string of JSON", arguments ? *arguments : json());
    if (json::parse(arguments->get<std::string>(), nullptr, false).is_discarded()) {
      return bad(args_name, fmt::format("`{}` must be a JSON text (the chat template gets it parsed, as "
                                        "in vLLM). Given: {}",
                                        args_name, describe_json(*arguments)));
    }
  }
  return std::nullopt;
}

MaybeError parse_message(const json& msg, const std::string& name, ChatMessage* parsed) {
  if (!msg.is_object()) return type_error(name, "an object with `role` and `content`", msg);
  const json* role = field(msg, "role");
  if (!role) return bad(name + ".role", fmt::format("`{}.role` is required", name));
  if (!role->is_string() || !is_known_role(role->get<std::string>())) {
    return bad(name + ".role",
               fmt::format("`{}.role` must be one of \"system\", \"user\", \"assistant\", "
                           "\"tool\", \"developer\". Given: {}",
                           name, describe_json(*role)));
  }
  parsed->role = role->get<std::string>();
  const json* content = field(msg, "content");
  const std::string content_name = name + ".content";
  if (!content) {
    // Assistant turns that only carried tool calls have no content.
    if (parsed->role != "assistant") return bad(content_name, fmt::format("`{}` is required", content_name));
    parsed->content_given = false;
  } else if (content->is_string()) {
    parsed->content = content->get<std::string>();
  } else if (content->is_array()) {
    STRATA_RETURN_IF_API_ERROR(parse_content_parts(*content, content_name, parsed));
  } else {
    return type_error(content_name, "a string or an array of text parts", *content);
  }
  if (const json* calls = field(msg, "tool_calls"); calls && parsed->role == "assistant") {
    STRATA_RETURN_IF_API_ERROR(check_tool_calls(*calls, name + ".tool_calls"));
    parsed->tool_calls_json = "pending";  // filled from the order-keeping parse
  }
  STRATA_RETURN_IF_API_ERROR(get_string(msg, "tool_call_id", &parsed->tool_call_id));
  STRATA_RETURN_IF_API_ERROR(get_string(msg, "name", &parsed->name));
  return std::nullopt;
}

MaybeError parse_messages(const json& body, std::vector<ChatMessage>* out) {
  const json* m = field(body, "messages");
  if (!m) {
    return bad("messages",
               "`messages` is required: a non-empty array of {\"role\", \"content\"} objects");
  }
  if (!m->is_array()) return type_error("messages", "an array of message objects", *m);
  if (m->empty()) return bad("messages", "`messages` must not be empty");
  out->clear();
  for (size_t i = 0; i < m->size(); ++i) {
    ChatMessage parsed;
    STRATA_RETURN_IF_API_ERROR(parse_message((*m)[i], fmt::format("messages[{}]", i), &parsed));
    out->push_back(std::move(parsed));
  }
  return std::nullopt;
}

MaybeError check_tools(const json& tools) {
  if (!tools.is_array()) return type_error("tools", "an array of {\"type\": \"function\", \"function\"} objects", tools);
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string name = fmt::format("tools[{}]", i);
    const json& tool = tools[i];
    if (!tool.is_object()) return type_error(name, "an object {\"type\": \"function\", \"function\"}", tool);
    const json* type = field(tool, "type");
    if (type && (!type->is_string() || type->get<std::string>() != "function")) {
      return bad(name + ".type", fmt::format("`{}.type` must be \"function\". Given: {}", name, describe_json(*type)));
    }
    const json* function = field(tool, "function");
    if (!function || !function->is_object()) {
      return bad(name + ".function", fmt::format("`{}.function` must be an object with a `name`", name));
    }
    const json* fname = field(*function, "name");
    if (!fname || !fname->is_string()) {
      return bad(name + ".function.name", fmt::format("`{}.function.name` must be a string", name));
    }
    const json* description = field(*function, "description");
    if (description && !description->is_string()) return type_error(name + ".function.description", "a string", *description);
    const json* parameters = field(*function, "parameters");
    if (parameters && !parameters->is_object()) return type_error(name + ".function.parameters", "an object", *parameters);
  }
  return std::nullopt;
}

// vLLM hands templates `tool.model_dump()`: {type, function: {name, description, parameters}}
// with null for what the request left out.
std::string normalized_tools(const ordered_json& tools) {
  ordered_json out = ordered_json::array();
  for (const ordered_json& tool : tools) {
    const ordered_json& f = tool.at("function");
    auto get = [&](const char* key) { return f.contains(key) ? f.at(key) : ordered_json(); };
    out.push_back({{"type", "function"},
                   {"function", {{"name", f.at("name")}, {"description", get("description")}, {"parameters", get("parameters")}}}});
  }
  return out.dump();
}

MaybeError fill_ordered_parts(std::string_view body_text, ChatFields* out) {
  const ordered_json body = ordered_json::parse(body_text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) return bad("", "Request body is not valid JSON");
  if (!out->tools_json.empty()) out->tools_json = normalized_tools(body.at("tools"));
  if (!out->chat_template_kwargs_json.empty()) out->chat_template_kwargs_json = body.at("chat_template_kwargs").dump();
  const ordered_json& messages = body.at("messages");
  for (size_t i = 0; i < out->messages.size(); ++i) {
    if (!out->messages[i].tool_calls_json.empty()) out->messages[i].tool_calls_json = messages.at(i).at("tool_calls").dump();
  }
  return std::nullopt;
}

}  // namespace

MaybeError parse_chat_fields(const json& body, std::string_view body_text, ChatFields* out) {
  STRATA_RETURN_IF_API_ERROR(parse_messages(body, &out->messages));
  bool needs_order = false;
  if (const json* tools = field(body, "tools")) {
    STRATA_RETURN_IF_API_ERROR(check_tools(*tools));
    out->tools_json = "pending";
    needs_order = true;
  }
  if (const json* choice = field(body, "tool_choice")) {
    if (!choice->is_string() || (choice->get<std::string>() != "auto" && choice->get<std::string>() != "none")) {
      return bad("tool_choice",
                 fmt::format("only `tool_choice` \"auto\" or \"none\" is supported (strata renders tools into "
                             "the prompt but does not force a call). Given: {}",
                             describe_json(*choice)));
    }
  }
  if (const json* kwargs = field(body, "chat_template_kwargs")) {
    if (!kwargs->is_object()) return type_error("chat_template_kwargs", "an object of template variables", *kwargs);
    out->chat_template_kwargs_json = "pending";
    needs_order = true;
  }
  for (const ChatMessage& m : out->messages) needs_order |= !m.tool_calls_json.empty();
  STRATA_RETURN_IF_API_ERROR(get_bool(body, "add_generation_prompt", &out->add_generation_prompt));
  if (needs_order) STRATA_RETURN_IF_API_ERROR(fill_ordered_parts(body_text, out));
  return std::nullopt;
}

}  // namespace strata::router
