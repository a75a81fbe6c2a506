// Finding a model's chat template: the GGUF file's own tokenizer.chat_template, else
// tokenizer_config.json's chat_template or chat_template.jinja beside the weights, else a
// built-in kind guessed from the tokenizer's special tokens.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/gguf/gguf_file.h"
#include "router/chat_template.h"

namespace strata::router {
namespace {

using nlohmann::json;

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


// A model's own template; `where` names its file for the error.
StatusOr<ChatTemplate> parse_model_template(std::string source, std::string bos, std::string eos,
                                            const std::string& where) {
  auto t = chat_template_from_jinja(std::move(source), std::move(bos), std::move(eos));
  if (!t.ok()) {
    return invalid_argument(
        "the chat template {} does not parse: {}; fix it, or pass --chat-template NAME to use a "
        "built-in format",
        where, t.status().message());
  }
  return t;
}

// The .gguf a model path names: the file itself, or the only .gguf in a directory that has
// no tokenizer_config.json (an HF directory's own files win there).
std::optional<std::filesystem::path> gguf_model_file(const std::filesystem::path& model_path) {
  std::error_code ec;
  if (!std::filesystem::is_directory(model_path, ec)) {
    if (gguf::is_gguf_file(model_path.string())) return model_path;
    return std::nullopt;
  }
  if (std::filesystem::exists(model_path / "tokenizer_config.json", ec)) return std::nullopt;
  const std::string found = gguf::only_gguf_file_in(model_path.string());
  if (found.empty()) return std::nullopt;
  return found;
}

// The token string at metadata id `id_key`, "" when the key or the id is absent.
std::string gguf_token_text(const gguf::GgufFile& file, const std::vector<std::string>& tokens,
                            std::string_view id_key) {
  auto id = file.get_int(id_key);
  if (!id.ok() || *id < 0 || *id >= static_cast<int64_t>(tokens.size())) return "";
  return tokens[static_cast<size_t>(*id)];
}

// A GGUF model's template: tokenizer.chat_template with the vocabulary's BOS/EOS strings;
// without one, a built-in kind detected from its control tokens (token_type 3).
StatusOr<ChatTemplate> gguf_chat_template(const std::filesystem::path& path) {
  STRATA_ASSIGN_OR_RETURN(gguf::GgufFile file, gguf::GgufFile::open(path.string()));
  STRATA_ASSIGN_OR_RETURN(std::vector<std::string> tokens,
                          file.get_string_array("tokenizer.ggml.tokens"));
  std::string bos = gguf_token_text(file, tokens, "tokenizer.ggml.bos_token_id");
  std::string eos = gguf_token_text(file, tokens, "tokenizer.ggml.eos_token_id");
  STRATA_ASSIGN_OR_RETURN(std::string source, file.get_string_or("tokenizer.chat_template", ""));
  if (!source.empty()) {
    return parse_model_template(std::move(source), std::move(bos), std::move(eos),
                                fmt::format("in {} (tokenizer.chat_template)", path.string()));
  }
  std::vector<std::string> control;
  if (auto types = file.get_int_array("tokenizer.ggml.token_type"); types.ok()) {
    for (size_t i = 0; i < types->size() && i < tokens.size(); ++i) {
      if ((*types)[i] == 3) control.push_back(tokens[i]);
    }
  }
  ChatTemplate t = default_chat_template(detect_chat_template_kind("", control));
  if (t.kind == ChatTemplateKind::kLlama2 || t.kind == ChatTemplateKind::kMistral) {
    if (!bos.empty()) t.bos_token = bos;
    if (!eos.empty()) t.eos_token = eos;
  }
  return t;
}

// "" when the file is absent.
std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// A built-in kind, with tokenizer_config.json's BOS/EOS strings where the family uses them
// (llama-3 keeps <|eot_id|>, its turn end, over the config's eos).
ChatTemplate builtin_with_config_tokens(ChatTemplateKind kind, const json& config) {
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

}  // namespace

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
  if (!override_name.empty()) {
    auto named = chat_template_kind_from_name(override_name);
    if (!named) {
      return invalid_argument(
          "unknown chat template `{}`; use one of llama-2, llama-3, chatml, mistral, plain",
          override_name);
    }
    return builtin_with_config_tokens(*named, config);
  }
  if (auto gguf_path = gguf_model_file(model_path)) return gguf_chat_template(*gguf_path);
  std::string source = template_source(config);
  if (source.empty()) source = read_text_file(dir / "chat_template.jinja");
  if (!source.empty()) {
    return parse_model_template(std::move(source), token_string(config, "bos_token").value_or(""),
                                token_string(config, "eos_token").value_or(""),
                                fmt::format("of {}", dir.string()));
  }
  std::vector<std::string> special;
  collect_special_tokens(config, &special);
  const auto tokenizer_path = dir / "tokenizer.json";
  if (std::filesystem::exists(tokenizer_path, ec)) {
    STRATA_ASSIGN_OR_RETURN(json tokenizer, read_json_file(tokenizer_path));
    collect_special_tokens(tokenizer, &special);
  }
  return builtin_with_config_tokens(detect_chat_template_kind("", special), config);
}

}  // namespace strata::router
