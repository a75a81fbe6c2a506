#include "router/chat_template.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "common/utf8.h"
#include "router/jinja/template.h"

namespace strata::router {
namespace {


// Python's str.isspace() set, which Jinja's `trim` filter and str.strip() use.
bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// Python's str.strip() on UTF-8 text.
std::string strip(std::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    size_t len = 0;
    if (!is_python_space(utf8::decode(s, begin, &len))) break;
    begin += len;
  }
  size_t end = begin;  // one past the last non-space character
  for (size_t pos = begin; pos < s.size();) {
    size_t len = 0;
    const char32_t c = utf8::decode(s, pos, &len);
    pos += len;
    if (!is_python_space(c)) end = pos;
  }
  return std::string(s.substr(begin, end - begin));
}

std::string role_of(const ChatMessage& m) {
  return m.role == "developer" ? std::string("system") : m.role;
}

Status alternation_error(std::string_view family, size_t index, const std::string& role) {
  return invalid_argument(
      "the {} chat template needs roles to alternate user/assistant/user/... after an optional "
      "leading system message; `messages[{}].role` is \"{}\"",
      family, index, role);
}

StatusOr<RenderedChat> render_llama2(const ChatTemplate& t, std::span<const ChatMessage> msgs) {
  size_t first = 0;
  std::optional<std::string> system;
  if (!msgs.empty() && role_of(msgs[0]) == "system") {
    system = msgs[0].content;
    first = 1;
  }
  std::string out;
  for (size_t i = first; i < msgs.size(); ++i) {
    const std::string role = role_of(msgs[i]);
    const bool expect_user = (i - first) % 2 == 0;
    if ((role != "user" && role != "assistant") || (role == "user") != expect_user) {
      return alternation_error("llama-2", i, msgs[i].role);
    }
    std::string content;
    if (i == first && system) {
      content.append("<<SYS>>\n").append(*system).append("\n<</SYS>>\n\n");
    }
    content.append(msgs[i].content);
    if (role == "user") {
      out.append(t.bos_token).append("[INST] ").append(strip(content)).append(" [/INST]");
    } else {
      out.append(" ").append(strip(content)).append(" ").append(t.eos_token);
    }
  }
  return RenderedChat{.text = std::move(out), .contains_bos = false, .add_special_tokens = false};
}

StatusOr<RenderedChat> render_mistral(const ChatTemplate& t, std::span<const ChatMessage> msgs,
                                      size_t first, const std::string& system) {
  std::string out = t.bos_token;
  for (size_t i = first; i < msgs.size(); ++i) {
    const std::string role = role_of(msgs[i]);
    const bool expect_user = (i - first) % 2 == 0;
    if ((role != "user" && role != "assistant") || (role == "user") != expect_user) {
      return alternation_error("mistral", i, msgs[i].role);
    }
    if (role == "user") {
      out.append("[INST] ");
      if (i == first && !system.empty()) out.append(system).append("\n\n");
      out.append(msgs[i].content).append(" [/INST]");
    } else {
      out.append(msgs[i].content).append(t.eos_token);
    }
  }
  return RenderedChat{.text = std::move(out), .contains_bos = false, .add_special_tokens = false};
}

std::string render_llama3(const ChatTemplate& t, std::span<const ChatMessage> msgs,
                          bool add_generation_prompt) {
  std::string out;
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (i == 0) out += t.bos_token;
    out.append("<|start_header_id|>").append(role_of(msgs[i])).append("<|end_header_id|>\n\n");
    out.append(strip(msgs[i].content)).append("<|eot_id|>");
  }
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string render_chatml(std::span<const ChatMessage> msgs, bool add_generation_prompt) {
  std::string out;
  for (const ChatMessage& m : msgs) {
    out.append("<|im_start|>").append(role_of(m)).append("\n").append(m.content);
    out.append("<|im_end|>\n");
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string render_plain(std::span<const ChatMessage> msgs, bool add_generation_prompt) {
  std::string out;
  for (const ChatMessage& m : msgs) {
    std::string role = role_of(m);
    if (!role.empty()) role[0] = static_cast<char>(role[0] - 'a' + 'A');
    out.append(role).append(": ").append(m.content).append("\n");
  }
  if (add_generation_prompt) out += "Assistant:";
  return out;
}

// vLLM's content-format detection: a template that loops over a message's content wants the
// OpenAI list of parts; every other template gets a string.
bool template_iterates_content(const std::string& source) {
  static const std::regex loop_over_content(
      R"(\{%[-+]?\s*for\s+\w+\s+in\s+\w+(\[\s*['"]content['"]\s*\]|\.content)\s*(\||[-+]?%\}|if\b))");
  return std::regex_search(source, loop_over_content);
}

StatusOr<nlohmann::ordered_json> parse_ordered(const std::string& text, std::string_view what) {
  auto j = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument("{} is not valid JSON", what);
  return j;
}

// vLLM parses each tool call's JSON `function.arguments` into a mapping before rendering
// (transformers' tool-use templates expect a dict there).
StatusOr<jinja::Value> tool_calls_value(const ChatMessage& m, size_t index) {
  STRATA_ASSIGN_OR_RETURN(nlohmann::ordered_json calls,
                          parse_ordered(m.tool_calls_json, fmt::format("`messages[{}].tool_calls`", index)));
  for (auto& call : calls) {
    if (!call.is_object()) continue;
    auto function = call.find("function");
    if (function == call.end() || !function->is_object()) continue;
    auto arguments = function->find("arguments");
    if (arguments == function->end() || !arguments->is_string()) continue;
    auto parsed = nlohmann::ordered_json::parse(arguments->get<std::string>(), nullptr, false);
    if (parsed.is_discarded()) {
      return invalid_argument(
          "`messages[{}].tool_calls[].function.arguments` must be a JSON text (it is parsed for the "
          "chat template, as vLLM does); fix or re-serialize the arguments",
          index);
    }
    *arguments = std::move(parsed);
  }
  return jinja::from_json(calls);
}

StatusOr<jinja::Value> message_value(const ChatMessage& m, size_t index, bool content_as_parts) {
  jinja::Object o;
  o.set("role", jinja::Value(m.role));
  if (content_as_parts) {
    jinja::Array parts;
    std::vector<std::string> texts = m.content_is_parts ? m.content_parts : std::vector<std::string>{};
    if (!m.content_is_parts && m.content_given) texts.push_back(m.content);
    for (std::string& text : texts) {
      jinja::Object part;
      part.set("type", jinja::Value("text"));
      part.set("text", jinja::Value(std::move(text)));
      parts.emplace_back(std::move(part));
    }
    o.set("content", jinja::Value(std::move(parts)));
  } else {
    o.set("content", jinja::Value(m.content));
  }
  if (m.role == "assistant" && !m.tool_calls_json.empty()) {
    STRATA_ASSIGN_OR_RETURN(jinja::Value calls, tool_calls_value(m, index));
    o.set("tool_calls", std::move(calls));
  }
  if (m.role == "tool" && !m.tool_call_id.empty()) o.set("tool_call_id", jinja::Value(m.tool_call_id));
  if (!m.name.empty()) o.set("name", jinja::Value(m.name));
  return jinja::Value(std::move(o));
}

StatusOr<jinja::Value> jinja_context(const ChatTemplate& t, std::span<const ChatMessage> messages,
                                     const ChatRenderOptions& options) {
  jinja::Array list;
  for (size_t i = 0; i < messages.size(); ++i) {
    STRATA_ASSIGN_OR_RETURN(jinja::Value m, message_value(messages[i], i, t.content_as_parts));
    list.push_back(std::move(m));
  }
  jinja::Object context;
  context.set("messages", jinja::Value(std::move(list)));
  jinja::Value tools = jinja::Value::none();
  if (!options.tools_json.empty()) {
    STRATA_ASSIGN_OR_RETURN(nlohmann::ordered_json j, parse_ordered(options.tools_json, "`tools`"));
    tools = jinja::from_json(j);
  }
  context.set("tools", std::move(tools));
  context.set("documents", jinja::Value::none());
  context.set("add_generation_prompt", jinja::Value(options.add_generation_prompt));
  context.set("bos_token", jinja::Value(t.bos_token));
  context.set("eos_token", jinja::Value(t.eos_token));
  if (!options.chat_template_kwargs_json.empty()) {
    STRATA_ASSIGN_OR_RETURN(nlohmann::ordered_json kwargs,
                            parse_ordered(options.chat_template_kwargs_json, "`chat_template_kwargs`"));
    if (!kwargs.is_object()) return invalid_argument("`chat_template_kwargs` must be an object");
    for (auto it = kwargs.begin(); it != kwargs.end(); ++it) context.set(it.key(), jinja::from_json(it.value()));
  }
  return jinja::Value(std::move(context));
}

StatusOr<RenderedChat> render_jinja(const ChatTemplate& t, std::span<const ChatMessage> messages,
                                    const ChatRenderOptions& options) {
  STRATA_ASSIGN_OR_RETURN(jinja::Value context, jinja_context(t, messages, options));
  STRATA_ASSIGN_OR_RETURN(std::string text, t.jinja->render(context));
  RenderedChat out{.text = std::move(text), .contains_bos = false, .add_special_tokens = false};
  out.contains_bos = !t.bos_token.empty() && out.text.starts_with(t.bos_token);
  return out;
}

}  // namespace

std::string_view chat_template_name(ChatTemplateKind kind) {
  switch (kind) {
    case ChatTemplateKind::kLlama2:
      return "llama-2";
    case ChatTemplateKind::kLlama3:
      return "llama-3";
    case ChatTemplateKind::kChatml:
      return "chatml";
    case ChatTemplateKind::kMistral:
      return "mistral";
    case ChatTemplateKind::kPlain:
      return "plain";
  }
  return "plain";
}

std::optional<ChatTemplateKind> chat_template_kind_from_name(std::string_view name) {
  if (name == "llama-2" || name == "llama2") return ChatTemplateKind::kLlama2;
  if (name == "llama-3" || name == "llama3") return ChatTemplateKind::kLlama3;
  if (name == "chatml") return ChatTemplateKind::kChatml;
  if (name == "mistral") return ChatTemplateKind::kMistral;
  if (name == "plain") return ChatTemplateKind::kPlain;
  return std::nullopt;
}

ChatTemplate default_chat_template(ChatTemplateKind kind) {
  switch (kind) {
    case ChatTemplateKind::kLlama2:
    case ChatTemplateKind::kMistral:
      return ChatTemplate{.kind = kind, .bos_token = "<s>", .eos_token = "</s>"};
    case ChatTemplateKind::kLlama3:
      return ChatTemplate{
          .kind = kind, .bos_token = "<|begin_of_text|>", .eos_token = "<|eot_id|>"};
    case ChatTemplateKind::kChatml:
    case ChatTemplateKind::kPlain:
      break;
  }
  return ChatTemplate{.kind = kind, .bos_token = "", .eos_token = ""};
}

ChatTemplateKind detect_chat_template_kind(std::string_view source,
                                           std::span<const std::string> special_tokens) {
  auto has = [&](std::string_view marker) { return source.find(marker) != source.npos; };
  if (!source.empty()) {
    if (has("<|im_start|>")) return ChatTemplateKind::kChatml;
    if (has("<|start_header_id|>")) return ChatTemplateKind::kLlama3;
    if (has("<<SYS>>")) return ChatTemplateKind::kLlama2;  // before [INST]: llama-2 has both
    if (has("[INST]")) return ChatTemplateKind::kMistral;
  }
  auto has_token = [&](std::string_view token) {
    for (const std::string& t : special_tokens) {
      if (t == token) return true;
    }
    return false;
  };
  if (has_token("<|im_start|>")) return ChatTemplateKind::kChatml;
  if (has_token("<|start_header_id|>")) return ChatTemplateKind::kLlama3;
  if (has_token("[INST]")) return ChatTemplateKind::kMistral;
  return ChatTemplateKind::kPlain;
}

StatusOr<ChatTemplate> chat_template_from_jinja(std::string source, std::string bos_token,
                                                std::string eos_token) {
  STRATA_ASSIGN_OR_RETURN(jinja::Template parsed, jinja::Template::parse(source));
  return ChatTemplate{.kind = detect_chat_template_kind(source),
                      .bos_token = std::move(bos_token),
                      .eos_token = std::move(eos_token),
                      .jinja = std::make_shared<const jinja::Template>(std::move(parsed)),
                      .content_as_parts = template_iterates_content(source)};
}

StatusOr<RenderedChat> render_chat(const ChatTemplate& t, std::span<const ChatMessage> messages,
                                   bool add_generation_prompt) {
  return render_chat(t, messages, ChatRenderOptions{.add_generation_prompt = add_generation_prompt});
}

StatusOr<RenderedChat> render_chat(const ChatTemplate& t, std::span<const ChatMessage> messages,
                                   const ChatRenderOptions& options) {
  if (t.jinja) return render_jinja(t, messages, options);
  if (!options.tools_json.empty() && options.tools_json != "[]") {
    return invalid_argument(
        "`tools` needs the model's own chat template, and this model is served with the built-in "
        "{} format (no template shipped, or --chat-template forces it); remove `tools`",
        chat_template_name(t.kind));
  }
  const bool add_generation_prompt = options.add_generation_prompt;
  bool has_turn = false;
  for (const ChatMessage& m : messages) has_turn |= role_of(m) != "system";
  if (!has_turn) {
    return invalid_argument("`messages` needs at least one user message");
  }
  RenderedChat out;
  switch (t.kind) {
    case ChatTemplateKind::kLlama2: {
      STRATA_ASSIGN_OR_RETURN(out, render_llama2(t, messages));
      break;
    }
    case ChatTemplateKind::kMistral: {
      const bool leading_system = role_of(messages[0]) == "system";
      STRATA_ASSIGN_OR_RETURN(out,
                              render_mistral(t, messages, leading_system ? 1 : 0,
                                             leading_system ? messages[0].content : std::string()));
      break;
    }
    case ChatTemplateKind::kLlama3:
      out = RenderedChat{.text = render_llama3(t, messages, add_generation_prompt),
                         .contains_bos = false,
                         .add_special_tokens = false};
      break;
    case ChatTemplateKind::kChatml:
      out = RenderedChat{.text = render_chatml(messages, add_generation_prompt),
                         .contains_bos = false,
                         .add_special_tokens = false};
      break;
    case ChatTemplateKind::kPlain:
      out = RenderedChat{.text = render_plain(messages, add_generation_prompt),
                         .contains_bos = false,
                         .add_special_tokens = true};
      break;
  }
  out.contains_bos = !t.bos_token.empty() && out.text.starts_with(t.bos_token);
  return out;
}

}  // namespace strata::router
