// Runs a parsed template: statements, scopes and expressions with jinja2's semantics.
#pragma once

#include <cstdint>
#include <string>

#include "router/jinja/ast.h"

namespace strata::jinja {

struct RenderLimits {
  size_t max_output_bytes = size_t{16} << 20;  // output, and any one string or list built
  int64_t max_steps = 5'000'000;               // statements run + loop iterations
  int max_call_depth = 64;                     // nested macro calls
};

// Renders `body` with the variables of `context` (an object). Throws TemplateError.
std::string render_body(const Body& body, const Value& context, const RenderLimits& limits);

}  // namespace strata::jinja
