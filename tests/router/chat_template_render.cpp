// chat_template_render CASES.json: renders each case with strata's chat template path and
// prints one JSON line per case, {"ok": true, "text": ...} or {"ok": false, "error": ...}.
// A case is {"template", "bos_token", "eos_token", "request"}: `request` is a
// /v1/chat/completions body (messages, tools, chat_template_kwargs, add_generation_prompt),
// parsed by the router's own parser, so the comparison with jinja2
// (test_chat_templates_vs_jinja2.py) covers request parsing, the vLLM message conversion and
// the interpreter together.
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "router/chat_template.h"
#include "router/openai_api.h"

using namespace strata::router;

namespace {

nlohmann::json render_case(const nlohmann::ordered_json& c) {
  auto t = chat_template_from_jinja(c.at("template").get<std::string>(), c.value("bos_token", ""),
                                    c.value("eos_token", ""));
  if (!t.ok()) return {{"ok", false}, {"error", t.status().message()}};
  ApiLimits limits;
  limits.served_model_name = "m";
  limits.vocab_size = 32000;
  limits.max_model_len = 1 << 20;
  auto parsed = parse_generation_request(c.at("request").dump(), Route::kChatCompletions, limits);
  if (auto* e = std::get_if<ApiError>(&parsed)) return {{"ok", false}, {"error", e->message}, {"parse_error", true}};
  const GenerationRequest& r = std::get<GenerationRequest>(parsed);
  const ChatRenderOptions options{.add_generation_prompt = r.add_generation_prompt,
                                  .tools_json = r.tools_json,
                                  .chat_template_kwargs_json = r.chat_template_kwargs_json};
  auto rendered = render_chat(*t, r.messages, options);
  if (!rendered.ok()) return {{"ok", false}, {"error", rendered.status().message()}};
  return {{"ok", true}, {"text", rendered->text}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: chat_template_render CASES.json\n";
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::cerr << "cannot open " << argv[1] << "\n";
    return 2;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  const auto cases = nlohmann::ordered_json::parse(buffer.str());
  for (const auto& c : cases) std::cout << render_case(c).dump() << "\n";
  return 0;
}
