#include "router/chat_template.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/utf8.h"

namespace strata::router {
namespace {

using nlohmann::json;

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

StatusOr<json> read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot open {}", path.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  json j = json::parse(buffer.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return data_loss("{} is not valid JSON", path.string());
  return j;
}

// tokenizer_config.json's bos_token/eos_token: a string or {"content": "..."}.
std::optional<std::string> token_string(const json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto content = it->find("content");
    if (content != it->end() && content->is_string()) return content->get<std::string>();
  }
  return std::nullopt;
}

// The `chat_template` field: a string, or a list of {name, template} ("default" wins).
std::string template_source(const json& config) {
  auto it = config.find("chat_template");
  if (it == config.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    std::string fallback;
    for (const json& entry : *it) {
      if (!entry.is_object()) continue;
      auto name = entry.find("name");
      auto source = entry.find("template");
      if (source == entry.end() || !source->is_string()) continue;
      if (name != entry.end() && name->is_string() && name->get<std::string>() == "default") {
        return source->get<std::string>();
      }
      if (fallback.empty()) fallback = source->get<std::string>();
    }
    return fallback;
  }
  return "";
}

void collect_special_tokens(const json& j, std::vector<std::string>* out) {
  auto add = [&](const json& token) {
    auto content = token.find("content");
    if (content != token.end() && content->is_string()) out->push_back(content->get<std::string>());
  };
  if (auto it = j.find("added_tokens_decoder"); it != j.end() && it->is_object()) {
    for (const json& token : *it) {
      if (token.is_object()) add(token);
    }
  }
  if (auto it = j.find("added_tokens"); it != j.end() && it->is_array()) {
    for (const json& token : *it) {
      if (token.is_object()) add(token);
    }
  }
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

StatusOr<ChatTemplate> load_chat_template(const std::filesystem::path& model_path,
                                          std::string_view override_name) {
  std::error_code ec;
  const std::filesystem::path dir =
      std::filesystem::is_directory(model_path, ec) ? model_path : model_path.parent_path();
  json config = json::object();
  const auto config_path = dir / "tokenizer_config.json";
  if (std::filesystem::exists(config_path, ec)) {
    STRATA_ASSIGN_OR_RETURN(config, read_json_file(config_path));
    if (!config.is_object()) return data_loss("{} must hold a JSON object", config_path.string());
  }
  ChatTemplateKind kind = ChatTemplateKind::kPlain;
  if (!override_name.empty()) {
    auto named = chat_template_kind_from_name(override_name);
    if (!named) {
      return invalid_argument(
          "unknown chat template `{}`; use one of llama-2, llama-3, chatml, mistral, plain",
          override_name);
    }
    kind = *named;
  } else {
    std::string source = template_source(config);
    if (source.empty()) {
      std::ifstream in(dir / "chat_template.jinja", std::ios::binary);
      if (in) {
        std::stringstream buffer;
        buffer << in.rdbuf();
        source = buffer.str();
      }
    }
    std::vector<std::string> special;
    if (source.empty()) {
      collect_special_tokens(config, &special);
      const auto tokenizer_path = dir / "tokenizer.json";
      if (std::filesystem::exists(tokenizer_path, ec)) {
        STRATA_ASSIGN_OR_RETURN(json tokenizer, read_json_file(tokenizer_path));
        collect_special_tokens(tokenizer, &special);
      }
    }
    kind = detect_chat_template_kind(source, special);
  }
  ChatTemplate t = default_chat_template(kind);
  if (kind == ChatTemplateKind::kLlama2 || kind == ChatTemplateKind::kLlama3 ||
      kind == ChatTemplateKind::kMistral) {
    if (auto bos = token_string(config, "bos_token")) t.bos_token = *bos;
    if (kind != ChatTemplateKind::kLlama3) {
      if (auto eos = token_string(config, "eos_token")) t.eos_token = *eos;
    }
  }
  return t;
}

StatusOr<RenderedChat> render_chat(const ChatTemplate& t, std::span<const ChatMessage> messages,
                                   bool add_generation_prompt) {
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
