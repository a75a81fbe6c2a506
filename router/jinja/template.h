// A Jinja2 chat template, parsed once and rendered per request.
//
// Design note: HF models ship their prompt format as a Jinja2 template, which transformers
// renders with jinja2's ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
// loopcontrols) plus raise_exception, strftime_now and a json.dumps-based tojson. No
// maintained C++ Jinja library is packaged for this machine, so this is a subset interpreter
// of what real chat templates use (for/if/set/macro/call/filter blocks, loop.*, namespace,
// slicing, the common filters/tests/str and dict methods), with jinja2's whitespace rules and
// Python's value semantics so the rendered bytes equal jinja2's (tests/router/chat_templates
// compares them on published templates). Errors never escape as exceptions: a syntax error,
// an undefined value used where jinja2 errors, raise_exception("msg") or a limit hit is an
// InvalidArgument whose message is the template's (raise_exception's text verbatim).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "router/jinja/evaluator.h"
#include "router/jinja/value.h"

namespace strata::jinja {

class Template {
 public:
  // InvalidArgument "chat template syntax error: ... (line N)" for a template jinja2 refuses.
  static StatusOr<Template> parse(std::string_view source);

  // `context` is an object: its keys are the template's variables. Thread-safe (const).
  StatusOr<std::string> render(const Value& context, const RenderLimits& limits = {}) const;

 private:
  std::shared_ptr<const Body> body_;
};

}  // namespace strata::jinja
