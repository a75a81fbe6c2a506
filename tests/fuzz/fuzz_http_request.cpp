// The router's request bodies: POST /v1/completions, /v1/chat/completions, /tokenize and
// /detokenize parse untrusted JSON (UTF-8 checks, chat messages, tools, kwargs). The first
// byte picks the route; a chat request that parses is rendered through a built-in format and
// through a published tool-use Jinja template, as the router would before tokenizing.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "router/chat_template.h"
#include "router/openai_api.h"
#include "tests/fuzz/fuzz_support.h"

namespace strata::fuzz {
namespace {

const router::ChatTemplate& tool_use_template() {
  static const router::ChatTemplate t = [] {
    std::ifstream in(std::filesystem::path(STRATA_SOURCE_DIR) /
                     "tests/router/chat_templates/meta-llama-Llama-3.1-8B-Instruct.jinja");
    std::stringstream source;
    source << in.rdbuf();
    auto parsed = router::chat_template_from_jinja(source.str(), "<|begin_of_text|>", "<|eot_id|>");
    return parsed.ok() ? *parsed : router::default_chat_template(router::ChatTemplateKind::kChatml);
  }();
  return t;
}

void render(const router::GenerationRequest& request) {
  const router::ChatRenderOptions options{.add_generation_prompt = request.add_generation_prompt,
                                          .tools_json = request.tools_json,
                                          .chat_template_kwargs_json = request.chat_template_kwargs_json};
  (void)router::render_chat(router::default_chat_template(router::ChatTemplateKind::kLlama2),
                            request.messages, options);
  (void)router::render_chat(tool_use_template(), request.messages, options);
}

}  // namespace
}  // namespace strata::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata::router;
  if (size == 0) return 0;
  const std::string_view body = strata::fuzz::as_text(data + 1, size - 1);
  const ApiLimits limits;
  switch (data[0] % 4) {
    case 0:
      (void)parse_generation_request(body, Route::kCompletions, limits);
      break;
    case 1: {
      auto parsed = parse_generation_request(body, Route::kChatCompletions, limits);
      if (auto* request = std::get_if<GenerationRequest>(&parsed)) strata::fuzz::render(*request);
      break;
    }
    case 2:
      (void)parse_tokenize_request(body, limits);
      break;
    default:
      (void)parse_detokenize_request(body, limits);
  }
  return 0;
}
