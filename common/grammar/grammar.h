// Grammar: a context-free grammar over Unicode code points, in the form constrained decoding
// runs on (issue 19): rules of alternatives of sequences, each element one code point from a
// set of ranges or a reference to a rule. Repetition and groups of the text form are lowered
// into helper rules when parsed, so the matcher (grammar_matcher.h) sees only these two kinds.
//
// The text form is llama.cpp's GBNF, the one users already write:
//   root   ::= object
//   object ::= "{" ws ( pair ( "," ws pair )* )? "}"
//   ws     ::= [ \t\n]*
// literals in double quotes (\n \t \r \\ \" \xHH \uHHHH \UHHHHHHHH), classes [a-z0-9_] and
// [^"\\], `.` (any code point), groups ( ), postfix * + ? {m} {m,} {m,n}, comments from #.
// A rule runs until the next `name ::=` or the end. No maintained C++ library for this is
// packaged here (llama.cpp's parser is part of llama.cpp), so it is written here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace strata::grammar {

struct CodePointRange {
  uint32_t first = 0;
  uint32_t last = 0;  // inclusive
};

struct Element {
  enum class Kind { kCodePoint, kRule };
  Kind kind = Kind::kCodePoint;
  // kCodePoint: one code point in `ranges`, or, when `negated`, in none of them.
  std::vector<CodePointRange> ranges;
  bool negated = false;
  int rule = -1;  // kRule

  bool matches(uint32_t code_point) const;
  // Whether some code point in [first, last] matches (a token that ends inside a UTF-8
  // character leaves such an interval open).
  bool matches_any(uint32_t first, uint32_t last) const;
};

using Sequence = std::vector<Element>;

struct Rule {
  std::string name;
  std::vector<Sequence> alternatives;  // an empty sequence matches the empty string
};

struct Grammar {
  std::vector<Rule> rules;
  int root = 0;

  // The index of the rule named `name`, or -1.
  int find(std::string_view name) const;
};

// Parses the GBNF text; `root` names the start rule. Errors name the line and what was
// expected. Undefined rules and left recursion (which a pushdown matcher cannot run) are
// errors too.
StatusOr<Grammar> parse_gbnf(std::string_view text, std::string_view root = "root");

// Rejects rules whose expansion can reach themselves again before consuming a code point.
Status check_no_left_recursion(const Grammar& grammar);

}  // namespace strata::grammar
