// The parsed form of a template: expressions and statements as jinja2's parser builds them.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "router/jinja/value.h"

namespace strata::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,  // literal
    kName,     // name
    kList,     // items
    kTuple,    // items
    kDict,     // items: key0, value0, key1, value1, ...
    kAttr,     // items[0] . name
    kIndex,    // items[0] [ items[1] ]
    kSlice,    // items[0] [ items[1] : items[2] : items[3] ] (null parts omitted)
    kCall,     // items[0] ( items[1..] , kwargs )
    kFilter,   // items[0] | name ( items[1..], kwargs )
    kTest,     // items[0] is [not] name ( items[1..], kwargs )
    kUnary,    // name ("-", "+", "not") items[0]
    kBinary,   // items[0] name items[1]; name: + - * / // % ** ~ and or
    kCompare,  // items[0] ops[0] items[1] ops[1] items[2] ...
    kCond,     // items[1] if items[0] else items[2] (items[2] null: undefined)
  };
  Kind kind;
  int line = 0;
  Value literal;
  std::string name;
  std::vector<ExprPtr> items;
  std::vector<std::string> ops;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negated = false;  // kTest: "is not"
};

struct Node;
using Body = std::vector<std::unique_ptr<Node>>;

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // null: required
};

struct Node {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }}
    kIf,        // branches: (condition, body) ...; else_body
    kFor,       // targets in expr [if filter]: body; else_body
    kSet,       // target (kName, or kAttr on a namespace, or kTuple) = expr
    kSetBlock,  // {% set target %}body{% endset %}
    kMacro,     // name(params): body
    kCallBlock, // {% call expr %}body{% endcall %}: body is the macro's caller()
    kBreak,
    kContinue,
    kFilterBlock,  // {% filter expr %}body{% endfilter %}: expr is a kFilter on a placeholder
    kScope,        // a body of its own (generation blocks)
  };
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr target;
  ExprPtr filter;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  std::vector<MacroParam> params;
};

}  // namespace strata::jinja
