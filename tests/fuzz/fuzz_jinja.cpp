// The Jinja interpreter on arbitrary template sources (a model file's chat template is
// untrusted input): parse, then render against a chat-shaped context under tight limits so
// one input cannot run for long. Errors are expected; crashes, hangs and exceptions are not.
#include <nlohmann/json.hpp>

#include "router/jinja/template.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

const strata::jinja::Value& context() {
  static const strata::jinja::Value value = strata::jinja::from_json(nlohmann::ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "Be brief."},
                 {"role": "user", "content": "Hi"},
                 {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
                   "function": {"name": "f", "arguments": {"x": [1, 2.5, null, true]}}}]},
                 {"role": "tool", "tool_call_id": "c1", "content": "42"},
                 {"role": "user", "content": [{"type": "text", "text": "more"}]}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "documents": null, "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})"));
  return value;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16384) return 0;
  auto parsed = strata::jinja::Template::parse(strata::fuzz::as_text(data, size));
  if (!parsed.ok()) return 0;
  const strata::jinja::RenderLimits limits{.max_output_bytes = 1 << 20, .max_steps = 100'000,
                                           .max_call_depth = 16};
  (void)parsed->render(context(), limits);
  return 0;
}
