// Chat templates: render OpenAI-style messages into the prompt text a model was tuned on.
//
// Design note: HF models ship a Jinja template in tokenizer_config.json. strata does not
// embed a Jinja interpreter; it recognizes the template family from its markers and renders
// that family with a built-in C++ renderer whose output equals what HF's
// `apply_chat_template(messages, tokenize=False, add_generation_prompt=...)` renders for the
// reference template of the family:
//   llama-2  meta-llama/Llama-2-*-chat-hf:   "<s>[INST] <<SYS>>\n{sys}\n<</SYS>>\n\n{user} [/INST]"
//            " {assistant} </s><s>[INST] {user} [/INST]" (contents .strip()ped, as there)
//   llama-3  Meta-Llama-3-*-Instruct:        "<|begin_of_text|><|start_header_id|>{role}"
//            "<|end_header_id|>\n\n{content|trim}<|eot_id|>" ... + assistant header
//   chatml   "<|im_start|>{role}\n{content}<|im_end|>\n" ... + "<|im_start|>assistant\n"
//   mistral  Mistral-7B-Instruct-v0.1/v0.2:  "<s>[INST] {user} [/INST]{assistant}</s>[INST] ..."
//   plain    no template: "System: …\nUser: …\nAssistant: …\n" + "Assistant:"
// Where the reference template raises an error (roles that do not alternate user/assistant
// in llama-2 and mistral), render_chat returns a 400-able InvalidArgument instead.
// strata's documented extensions/deviations: role "developer" (OpenAI's newer name for
// "system") renders as "system"; mistral accepts a leading system message and prepends it
// to the first user message followed by "\n\n" (v0.1's template refuses system messages);
// llama-2 and mistral refuse roles other than system/user/assistant instead of silently
// dropping some of them; a chat with no user/assistant turn is refused rather than rendered
// as "". The llama-3 renderer is the 3.0 format: 3.1+'s default "Cutting Knowledge Date"
// system block is not added.
#pragma once

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "router/api_types.h"

namespace strata::router {

enum class ChatTemplateKind { kLlama2, kLlama3, kChatml, kMistral, kPlain };

struct ChatTemplate {
  ChatTemplateKind kind = ChatTemplateKind::kPlain;
  std::string bos_token;  // "<s>", "<|begin_of_text|>"; "" where the format has none
  std::string eos_token;  // closes assistant turns in llama-2 and mistral ("</s>")
};

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

// The template for a model directory (or a model file: its directory is used):
// tokenizer_config.json's `chat_template` (a string, or a list of {name, template} from which
// "default" is taken), else chat_template.jinja, else special tokens from tokenizer_config's
// added_tokens_decoder and tokenizer.json's added_tokens; bos_token/eos_token from
// tokenizer_config.json when present. A non-empty `override_name` picks the family instead
// (an unknown name is an InvalidArgument listing the valid ones). Missing files ⇒ plain.
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

// Renders `messages` (roles system|developer|user|assistant|tool). add_generation_prompt
// appends the assistant header where the format has one (llama-3, chatml, plain).
StatusOr<RenderedChat> render_chat(const ChatTemplate& chat_template,
                                   std::span<const ChatMessage> messages,
                                   bool add_generation_prompt = true);

}  // namespace strata::router
