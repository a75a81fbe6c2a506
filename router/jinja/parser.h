// Jinja2's grammar over the lexer's tokens, with jinja2's operator precedence (filters and
// tests bind tighter than arithmetic: `a + b | trim` is `a + (b | trim)`).
#pragma once

#include <string_view>

#include "router/jinja/ast.h"

namespace strata::jinja {

// Throws TemplateError naming the problem and its line; nesting deeper than max_depth
// (brackets, blocks) is refused so that a hostile template cannot exhaust the stack.
Body parse_template(std::string_view source, int max_depth = 128);

}  // namespace strata::jinja
