// Chat templates: render OpenAI-style messages into the prompt text a model was tuned on.
//
// Design note: a model's own template wins. When the model ships one (tokenizer_config.json's
// `chat_template`, chat_template.jinja, or GGUF's tokenizer.chat_template through
// chat_template_from_jinja), render_chat evaluates it with strata's Jinja2 interpreter
// (router/jinja/template.h) exactly as vLLM calls HF's apply_chat_template: variables
// `messages` (vLLM's conversation messages: role; content as a string of the text parts joined
// with "\n", or as the list of {type: "text", text} parts when the template loops over
// content; tool_calls with function.arguments parsed from its JSON string into a mapping;
// tool_call_id; name), `tools` (None when the request has none), `documents` (None),
// `add_generation_prompt`, `bos_token`, `eos_token`, then every key of the request's
// `chat_template_kwargs`. The text carries the template's own BOS, so it is encoded with
// add_special_tokens=false. Whatever the template raises (raise_exception, a syntax error,
// an undefined value jinja2 would refuse) is an InvalidArgument with the template's message.
//
// Built-in renderers remain for models without a template and for `--chat-template NAME`,
// which forces one. Their output equals HF's rendering of the family's reference template:
//   llama-2  meta-llama/Llama-2-*-chat-hf:   "<s>[INST] <<SYS>>\n{sys}\n<</SYS>>\n\n{user} [/INST]"
//            " {assistant} </s><s>[INST] {user} [/INST]" (contents .strip()ped, as there)
//   llama-3  Meta-Llama-3-*-Instruct:        "<|begin_of_text|><|start_header_id|>{role}"
//            "<|end_header_id|>\n\n{content|trim}<|eot_id|>" ... + assistant header
//   chatml   "<|im_start|>{role}\n{content}<|im_end|>\n" ... + "<|im_start|>assistant\n"
//   mistral  Mistral-7B-Instruct-v0.1/v0.2:  "<s>[INST] {user} [/INST]{assistant}</s>[INST] ..."
//   plain    no template: "System: …\nUser: …\nAssistant: …\n" + "Assistant:"
// Where the reference template raises an error (roles that do not alternate user/assistant
// in llama-2 and mistral), render_chat returns a 400-able InvalidArgument instead.
// Built-in deviations: role "developer" renders as "system"; mistral accepts a leading system
// message and prepends it to the first user message followed by "\n\n"; llama-2 and mistral
// refuse roles other than system/user/assistant; a chat with no user/assistant turn is
// refused; llama-3 is the 3.0 format (no "Cutting Knowledge Date" block); `tools` are refused
// (a built-in format has no place for them).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "router/api_types.h"

namespace strata::jinja {
class Template;
}

namespace strata::router {

enum class ChatTemplateKind { kLlama2, kLlama3, kChatml, kMistral, kPlain };

struct ChatTemplate {
  ChatTemplateKind kind = ChatTemplateKind::kPlain;  // the family (detected when jinja is set)
  std::string bos_token;  // "<s>", "<|begin_of_text|>"; "" where the format has none
  std::string eos_token;  // closes assistant turns in llama-2 and mistral ("</s>")
  // The model's own template; null: render with the built-in `kind`.
  std::shared_ptr<const jinja::Template> jinja;
  // vLLM's "openai" content format: the template iterates over message content, so content
  // is passed as a list of parts instead of a string.
  bool content_as_parts = false;
};

// A template from its Jinja source (as GGUF's tokenizer.chat_template or a .jinja file holds
// it) and the tokenizer's BOS/EOS strings. InvalidArgument when the source does not parse.
StatusOr<ChatTemplate> chat_template_from_jinja(std::string source, std::string bos_token,
                                                std::string eos_token);

// "llama-2", "llama-3", "chatml", "mistral", "plain".
std::string_view chat_template_name(ChatTemplateKind kind);
// Accepts the names above (and "llama2", "llama3"); nullopt for anything else.
std::optional<ChatTemplateKind> chat_template_kind_from_name(std::string_view name);
// The family's usual BOS/EOS strings.
ChatTemplate default_chat_template(ChatTemplateKind kind);

// Recognizes a Jinja template by its markers: <|im_start|> → chatml, <|start_header_id|> →
// llama-3, <<SYS>> → llama-2, [INST] → mistral. With no template (empty source), by the
// tokenizer's special tokens (<|im_start|>, <|start_header_id|>, [INST]); else plain.
ChatTemplateKind detect_chat_template_kind(std::string_view jinja_source,
                                           std::span<const std::string> special_tokens = {});

// The template for a model directory (or a model file: its directory is used). A GGUF model
// (the .gguf file, or a directory whose only model file is one .gguf and which has no
// tokenizer_config.json) uses its own `tokenizer.chat_template` with the vocabulary's BOS/EOS
// strings, or without one a built-in kind detected from its control tokens. Otherwise the Jinja
// source of tokenizer_config.json's `chat_template` (a string, or a list of {name, template}
// from which "default" is taken), else of chat_template.jinja, with bos_token/eos_token from
// tokenizer_config.json; a source that does not parse is an InvalidArgument saying so. With
// no source, a built-in kind detected from special tokens (tokenizer_config's
// added_tokens_decoder, tokenizer.json's added_tokens). A non-empty `override_name` forces a
// built-in kind (an unknown name is an InvalidArgument listing the valid ones). Missing
// files ⇒ plain.
StatusOr<ChatTemplate> load_chat_template(const std::filesystem::path& model_path,
                                          std::string_view override_name = "");

struct RenderedChat {
  std::string text;
  // The text starts with the template's BOS token: the tokenizer must not add another.
  bool contains_bos = false;
  // What to pass as encode(..., add_special_tokens): false for every model template (HF's
  // apply_chat_template never adds special tokens; the template carries them), true only for
  // the plain fallback, which has no BOS of its own.
  bool add_special_tokens = true;
};

struct ChatRenderOptions {
  bool add_generation_prompt = true;
  std::string tools_json;                 // "" ⇒ tools=None; else a JSON array
  std::string chat_template_kwargs_json;  // "" or a JSON object of extra template variables
};

// Renders `messages` (roles system|developer|user|assistant|tool). add_generation_prompt
// appends the assistant header where the format has one (built-ins: llama-3, chatml, plain).
StatusOr<RenderedChat> render_chat(const ChatTemplate& chat_template,
                                   std::span<const ChatMessage> messages,
                                   const ChatRenderOptions& options);
StatusOr<RenderedChat> render_chat(const ChatTemplate& chat_template,
                                   std::span<const ChatMessage> messages,
                                   bool add_generation_prompt = true);

}  // namespace strata::router
