// Jinja2's lexer as HF configures it: trim_blocks and lstrip_blocks on, `{%-`/`-%}` (and the
// `{{`/`{#` forms) strip whitespace, `{%+`/`+%}` keep it, comments dropped, `{% raw %}`
// bodies kept as text, \r\n and \r read as \n, one trailing newline of the source dropped
// (jinja2's keep_trailing_newline=False). The rules follow jinja2/lexer.py so that the text
// between tags is byte for byte what jinja2 renders.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace strata::jinja {

enum class TokenType {
  kText,        // template text between tags (already whitespace-controlled)
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,
  kString,      // value: the decoded string
  kInt,
  kFloat,
  kOperator,    // value: the operator text ("==", "(", "|", ...)
  kEnd,
};

struct Token {
  TokenType type;
  std::string value;
  int line = 1;
};

// Throws TemplateError("... (line N)") on an unterminated tag, comment or string.
std::vector<Token> tokenize(std::string_view source);

}  // namespace strata::jinja
