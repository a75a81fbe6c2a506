#include "router/jinja/parser.h"

#include <fmt/format.h>

#include <charconv>
#include <initializer_list>

#include "router/jinja/builtins.h"
#include "router/jinja/lexer.h"

namespace strata::jinja {
namespace {

std::string describe(const Token& t) {
  switch (t.type) {
    case TokenType::kText: return "template data";
    case TokenType::kVarBegin: return "'{{'";
    case TokenType::kVarEnd: return "end of print statement";
    case TokenType::kBlockBegin: return "'{%'";
    case TokenType::kBlockEnd: return "end of statement block";
    case TokenType::kName: return fmt::format("'{}'", t.value);
    case TokenType::kString: return "string";
    case TokenType::kInt: return "integer";
    case TokenType::kFloat: return "float";
    case TokenType::kOperator: return fmt::format("'{}'", t.value);
    case TokenType::kEnd: return "end of template";
  }
  return "token";
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, int max_depth) : tokens_(std::move(tokens)), max_depth_(max_depth) {}

  Body parse_all() {
    Body body = parse_body({}, "");
    if (cur().type != TokenType::kEnd) fail(fmt::format("unexpected {}", describe(cur())));
    return body;
  }

 private:
  struct DepthGuard {
    explicit DepthGuard(Parser* p) : p_(p) {
      if (++p_->depth_ > p_->max_depth_) p_->fail(fmt::format("template nested deeper than {} levels", p_->max_depth_));
    }
    ~DepthGuard() { --p_->depth_; }
    Parser* p_;
  };

  const Token& cur() const { return tokens_[pos_]; }
  const Token& peek(size_t ahead = 1) const { return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)]; }
  Token next() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }
  [[noreturn]] void fail(const std::string& message) const {
    throw TemplateError(fmt::format("{} (line {})", message, cur().line));
  }
  bool is_op(std::string_view op) const { return cur().type == TokenType::kOperator && cur().value == op; }
  bool is_name(std::string_view name) const { return cur().type == TokenType::kName && cur().value == name; }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    ++pos_;
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!is_name(name)) return false;
    ++pos_;
    return true;
  }
  void expect_op(std::string_view op) {
    if (!skip_op(op)) fail(fmt::format("expected '{}', got {}", op, describe(cur())));
  }
  void expect(TokenType type, std::string_view what) {
    if (cur().type != type) fail(fmt::format("expected {}, got {}", what, describe(cur())));
    ++pos_;
  }
  std::string expect_name() {
    if (cur().type != TokenType::kName) fail(fmt::format("expected a name, got {}", describe(cur())));
    return next().value;
  }

  ExprPtr make(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // Statements up to a block whose tag is one of `ends` (left unconsumed after its '{%').
  Body parse_body(std::initializer_list<std::string_view> ends, std::string_view opener) {
    DepthGuard guard(this);
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == TokenType::kEnd) {
        if (ends.size() == 0) return body;
        std::string looking;
        for (std::string_view e : ends) looking += fmt::format("{}'{}'", looking.empty() ? "" : " or ", e);
        fail(fmt::format("Unexpected end of template. Jinja was looking for the following tags: {}. "
                         "The innermost block that needs to be closed is '{}'.",
                         looking, opener));
      }
      if (t.type == TokenType::kText) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::kText;
        n->text = next().value;
        body.push_back(std::move(n));
      } else if (t.type == TokenType::kVarBegin) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::kOutput;
        n->line = next().line;
        n->expr = parse_tuple(true);
        expect(TokenType::kVarEnd, "end of print statement");
        body.push_back(std::move(n));
      } else if (t.type == TokenType::kBlockBegin) {
        const Token& tag = peek();
        for (std::string_view e : ends) {
          if (tag.type == TokenType::kName && tag.value == e) {
            ++pos_;
            return body;
          }
        }
        ++pos_;
        body.push_back(parse_statement());
      } else {
        fail(fmt::format("unexpected {}", describe(t)));
      }
    }
  }

  void end_block() { expect(TokenType::kBlockEnd, "end of statement block"); }

  // At an end tag `name` (after its '{%'): consumes it through '%}'.
  void close(std::string_view name) {
    if (!skip_name(name)) fail(fmt::format("expected '{}'", name));
    end_block();
  }

  std::unique_ptr<Node> parse_statement() {
    auto n = std::make_unique<Node>();
    n->line = cur().line;
    const std::string tag = expect_name();
    if (tag == "for") return parse_for(std::move(n));
    if (tag == "if") return parse_if(std::move(n));
    if (tag == "set") return parse_set(std::move(n));
    if (tag == "macro") return parse_macro(std::move(n));
    if (tag == "call") return parse_call_block(std::move(n));
    if (tag == "filter") return parse_filter_block(std::move(n));
    if (tag == "break" || tag == "continue") {
      n->kind = tag == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
      end_block();
      return n;
    }
    if (tag == "generation") {
      n->kind = Node::Kind::kScope;
      end_block();
      n->body = parse_body({"endgeneration"}, "generation");
      close("endgeneration");
      return n;
    }
    fail(fmt::format("Encountered unknown tag '{}'.", tag));
  }

  std::unique_ptr<Node> parse_for(std::unique_ptr<Node> n) {
    n->kind = Node::Kind::kFor;
    n->target = parse_assign_target();
    if (!skip_name("in")) fail(fmt::format("expected 'in', got {}", describe(cur())));
    n->expr = parse_tuple(false);
    if (skip_name("if")) n->filter = parse_expression(true);
    if (skip_name("recursive")) fail("recursive for loops are not supported");
    end_block();
    n->body = parse_body({"endfor", "else"}, "for");
    if (skip_name("else")) {
      end_block();
      n->else_body = parse_body({"endfor"}, "for");
    }
    close("endfor");
    return n;
  }

  std::unique_ptr<Node> parse_if(std::unique_ptr<Node> n) {
    n->kind = Node::Kind::kIf;
    while (true) {
      ExprPtr cond = parse_tuple(false);
      end_block();
      Body body = parse_body({"elif", "else", "endif"}, "if");
      n->branches.emplace_back(std::move(cond), std::move(body));
      if (skip_name("elif")) continue;
      if (skip_name("else")) {
        end_block();
        n->else_body = parse_body({"endif"}, "if");
      }
      close("endif");
      return n;
    }
  }

  std::unique_ptr<Node> parse_set(std::unique_ptr<Node> n) {
    n->target = parse_assign_target();
    if (skip_op("=")) {
      n->kind = Node::Kind::kSet;
      n->expr = parse_tuple(true);
      end_block();
      return n;
    }
    if (is_op("|")) fail("filtered block assignments are not supported");
    n->kind = Node::Kind::kSetBlock;
    end_block();
    n->body = parse_body({"endset"}, "set");
    close("endset");
    return n;
  }

  std::unique_ptr<Node> parse_macro(std::unique_ptr<Node> n) {
    n->kind = Node::Kind::kMacro;
    n->text = expect_name();
    expect_op("(");
    while (!skip_op(")")) {
      if (!n->params.empty()) expect_op(",");
      if (skip_op(")")) break;
      MacroParam p{.name = expect_name(), .default_value = nullptr};
      if (skip_op("=")) p.default_value = parse_expression(true);
      n->params.push_back(std::move(p));
    }
    end_block();
    n->body = parse_body({"endmacro"}, "macro");
    close("endmacro");
    return n;
  }

  std::unique_ptr<Node> parse_call_block(std::unique_ptr<Node> n) {
    n->kind = Node::Kind::kCallBlock;
    if (is_op("(")) fail("call blocks with caller arguments are not supported");
    n->expr = parse_expression(true);
    if (n->expr->kind != Expr::Kind::kCall) fail("expected a call after 'call'");
    end_block();
    n->body = parse_body({"endcall"}, "call");
    close("endcall");
    return n;
  }

  std::unique_ptr<Node> parse_filter_block(std::unique_ptr<Node> n) {
    n->kind = Node::Kind::kFilterBlock;
    ExprPtr placeholder = make(Expr::Kind::kName, cur().line);
    placeholder->name = "\x01filter_body";
    n->filter = parse_filter(std::move(placeholder));
    while (is_op("|")) n->filter = parse_filter(std::move(n->filter));
    end_block();
    n->body = parse_body({"endfilter"}, "filter");
    close("endfilter");
    return n;
  }

  // `x`, `ns.attr`, or `a, b` (for loops and tuple assignment).
  ExprPtr parse_assign_target() {
    ExprPtr first = parse_target_name();
    if (!is_op(",")) return first;
    ExprPtr tuple = make(Expr::Kind::kTuple, first->line);
    tuple->items.push_back(std::move(first));
    while (skip_op(",")) {
      if (cur().type != TokenType::kName) break;
      tuple->items.push_back(parse_target_name());
    }
    return tuple;
  }

  ExprPtr parse_target_name() {
    const bool paren = skip_op("(");
    ExprPtr e = make(Expr::Kind::kName, cur().line);
    e->name = expect_name();
    if (skip_op(".")) {
      ExprPtr attr = make(Expr::Kind::kAttr, e->line);
      attr->name = expect_name();
      attr->items.push_back(std::move(e));
      e = std::move(attr);
    }
    if (paren) expect_op(")");
    return e;
  }

  // Expressions separated by commas: one expression, or a tuple of them.
  ExprPtr parse_tuple(bool with_condexpr) {
    ExprPtr first = parse_expression(with_condexpr);
    if (!is_op(",")) return first;
    ExprPtr tuple = make(Expr::Kind::kTuple, first->line);
    tuple->items.push_back(std::move(first));
    while (skip_op(",")) {
      if (cur().type == TokenType::kVarEnd || cur().type == TokenType::kBlockEnd || is_op(")")) break;
      tuple->items.push_back(parse_expression(with_condexpr));
    }
    return tuple;
  }

 public:
  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(this);
    ExprPtr e = parse_or();
    if (!with_condexpr) return e;
    while (is_name("if")) {
      const int line = next().line;
      ExprPtr cond = make(Expr::Kind::kCond, line);
      cond->items.push_back(parse_or());
      cond->items.push_back(std::move(e));
      cond->items.push_back(skip_name("else") ? parse_expression(true) : nullptr);
      e = std::move(cond);
    }
    return e;
  }

 private:
  ExprPtr binary(std::string op, ExprPtr a, ExprPtr b) {
    ExprPtr e = make(Expr::Kind::kBinary, a->line);
    e->name = std::move(op);
    e->items.push_back(std::move(a));
    e->items.push_back(std::move(b));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (skip_name("or")) e = binary("or", std::move(e), parse_and());
    return e;
  }

  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (skip_name("and")) e = binary("and", std::move(e), parse_not());
    return e;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      ExprPtr e = make(Expr::Kind::kUnary, next().line);
      e->name = "not";
      DepthGuard guard(this);
      e->items.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (cur().type == TokenType::kOperator &&
          (cur().value == "==" || cur().value == "!=" || cur().value == "<" || cur().value == ">" ||
           cur().value == "<=" || cur().value == ">=")) {
        op = next().value;
      } else if (skip_name("in")) {
        op = "in";
      } else if (is_name("not") && peek().type == TokenType::kName && peek().value == "in") {
        pos_ += 2;
        op = "notin";
      } else {
        break;
      }
      if (!cmp) {
        cmp = make(Expr::Kind::kCompare, first->line);
        cmp->items.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->items.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = next().value;
      e = binary(op, std::move(e), parse_concat());
    }
    return e;
  }

  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (skip_op("~")) e = binary("~", std::move(e), parse_math2());
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = next().value;
      e = binary(op, std::move(e), parse_pow());
    }
    return e;
  }

  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (skip_op("**")) e = binary("**", std::move(e), parse_unary(true));
    return e;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      e = make(Expr::Kind::kUnary, cur().line);
      e->name = next().value;
      e->items.push_back(parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr literal(Value v, int line) {
    ExprPtr e = make(Expr::Kind::kLiteral, line);
    e->literal = std::move(v);
    return e;
  }

  ExprPtr parse_primary() {
    const Token t = next();
    switch (t.type) {
      case TokenType::kName:
        if (t.value == "true" || t.value == "True") return literal(Value(true), t.line);
        if (t.value == "false" || t.value == "False") return literal(Value(false), t.line);
        if (t.value == "none" || t.value == "None") return literal(Value::none(), t.line);
        {
          ExprPtr e = make(Expr::Kind::kName, t.line);
          e->name = t.value;
          return e;
        }
      case TokenType::kString: {
        std::string s = t.value;
        while (cur().type == TokenType::kString) s += next().value;
        return literal(Value(std::move(s)), t.line);
      }
      case TokenType::kInt: {
        int64_t v = 0;
        auto [p, ec] = std::from_chars(t.value.data(), t.value.data() + t.value.size(), v);
        if (ec != std::errc()) fail(fmt::format("integer literal {} is too large", t.value));
        return literal(Value(v), t.line);
      }
      case TokenType::kFloat:
        return literal(Value(std::stod(t.value)), t.line);
      case TokenType::kOperator:
        if (t.value == "(") return parse_paren(t.line);
        if (t.value == "[") return parse_list(t.line);
        if (t.value == "{") return parse_dict(t.line);
        break;
      default:
        break;
    }
    --pos_;
    fail(fmt::format("unexpected {}", describe(t)));
  }

  ExprPtr parse_paren(int line) {
    if (skip_op(")")) return make(Expr::Kind::kTuple, line);
    ExprPtr e = parse_expression(true);
    if (is_op(",")) {
      ExprPtr tuple = make(Expr::Kind::kTuple, line);
      tuple->items.push_back(std::move(e));
      while (skip_op(",")) {
        if (is_op(")")) break;
        tuple->items.push_back(parse_expression(true));
      }
      e = std::move(tuple);
    }
    expect_op(")");
    return e;
  }

  ExprPtr parse_list(int line) {
    ExprPtr e = make(Expr::Kind::kList, line);
    while (!skip_op("]")) {
      if (!e->items.empty()) expect_op(",");
      if (skip_op("]")) break;
      e->items.push_back(parse_expression(true));
    }
    return e;
  }

  ExprPtr parse_dict(int line) {
    ExprPtr e = make(Expr::Kind::kDict, line);
    while (!skip_op("}")) {
      if (!e->items.empty()) expect_op(",");
      if (skip_op("}")) break;
      e->items.push_back(parse_expression(true));
      expect_op(":");
      e->items.push_back(parse_expression(true));
    }
    return e;
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        const int line = next().line;
        ExprPtr attr = make(Expr::Kind::kAttr, line);
        if (cur().type == TokenType::kInt) {
          attr->kind = Expr::Kind::kIndex;
          attr->items.push_back(std::move(e));
          attr->items.push_back(literal(Value(static_cast<int64_t>(std::stoll(next().value))), line));
        } else {
          attr->name = expect_name();
          attr->items.push_back(std::move(e));
        }
        e = std::move(attr);
      } else if (is_op("[")) {
        e = parse_subscript(std::move(e));
      } else if (is_op("(")) {
        ExprPtr call = make(Expr::Kind::kCall, cur().line);
        call->items.push_back(std::move(e));
        parse_call_args(call.get());
        e = std::move(call);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr target) {
    const int line = next().line;
    std::vector<ExprPtr> parts;  // start, stop, step
    bool is_slice = false;
    parts.push_back(is_op(":") ? nullptr : parse_expression(true));
    while (skip_op(":")) {
      is_slice = true;
      if (parts.size() == 3) fail("expected ']'");
      parts.push_back(is_op(":") || is_op("]") ? nullptr : parse_expression(true));
    }
    expect_op("]");
    ExprPtr e = make(is_slice ? Expr::Kind::kSlice : Expr::Kind::kIndex, line);
    e->items.push_back(std::move(target));
    for (auto& p : parts) e->items.push_back(std::move(p));
    while (is_slice && e->items.size() < 4) e->items.push_back(nullptr);
    return e;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        e = parse_filter(std::move(e));
      } else if (is_name("is")) {
        e = parse_test(std::move(e));
      } else if (is_op("(")) {
        ExprPtr call = make(Expr::Kind::kCall, cur().line);
        call->items.push_back(std::move(e));
        parse_call_args(call.get());
        e = std::move(call);
      } else {
        return e;
      }
    }
  }

  // At '(': positional and keyword arguments through ')'.
  void parse_call_args(Expr* call) {
    expect_op("(");
    bool first = true;
    while (!skip_op(")")) {
      if (!first) expect_op(",");
      first = false;
      if (skip_op(")")) break;
      if (is_op("*") || is_op("**")) fail("*args and **kwargs in calls are not supported");
      if (cur().type == TokenType::kName && peek().type == TokenType::kOperator && peek().value == "=") {
        std::string key = next().value;
        ++pos_;
        call->kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!call->kwargs.empty()) fail("positional argument follows keyword argument");
        call->items.push_back(parse_expression(true));
      }
    }
  }

  ExprPtr parse_filter(ExprPtr target) {
    const int line = next().line;  // '|'
    ExprPtr f = make(Expr::Kind::kFilter, line);
    f->name = expect_name();
    while (skip_op(".")) f->name += "." + expect_name();
    if (!has_filter(f->name)) fail(fmt::format("No filter named '{}'.", f->name));
    f->items.push_back(std::move(target));
    if (is_op("(")) parse_call_args(f.get());
    return f;
  }

  ExprPtr parse_test(ExprPtr target) {
    const int line = next().line;  // 'is'
    ExprPtr t = make(Expr::Kind::kTest, line);
    t->negated = skip_name("not");
    t->name = expect_name();
    while (skip_op(".")) t->name += "." + expect_name();
    if (!has_test(t->name)) fail(fmt::format("No test named '{}'.", t->name));
    t->items.push_back(std::move(target));
    if (is_op("(")) {
      parse_call_args(t.get());
    } else if ((cur().type == TokenType::kName || cur().type == TokenType::kString ||
                cur().type == TokenType::kInt || cur().type == TokenType::kFloat || is_op("[") ||
                is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail("You cannot chain multiple tests with is");
      t->items.push_back(parse_postfix(parse_primary()));
    }
    return t;
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
  int max_depth_;
};

}  // namespace

Body parse_template(std::string_view source, int max_depth) {
  Parser parser(tokenize(source), max_depth);
  return parser.parse_all();
}

}  // namespace strata::jinja
