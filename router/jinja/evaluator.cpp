#include "router/jinja/evaluator.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "router/jinja/builtins.h"

namespace strata::jinja {
namespace {

// A scope: for-loop iterations and macro calls get their own, `if` does not (as in jinja2,
// a `set` inside a loop is gone after the loop; namespaces carry values out).
struct Frame {
  std::unordered_map<std::string, Value> vars;
  const Frame* parent = nullptr;
};

enum class Flow { kNormal, kBreak, kContinue };

bool checked_add(int64_t a, int64_t b, int64_t* out) { return !__builtin_add_overflow(a, b, out); }

class Evaluator {
 public:
  Evaluator(const Value& context, const RenderLimits& limits) : limits_(limits) {
    globals_ = make_globals();
    for (const auto& [k, v] : context.object()->items) root_.vars[k] = v;
  }
  // `{% set ns.me = ns %}` makes a reference cycle that shared ownership never frees; no
  // value outlives the render (its result is a string), so emptying every namespace that was
  // assigned into breaks all such cycles.
  ~Evaluator() {
    for (const auto& ns : assigned_namespaces_) ns->items.clear();
  }
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;

  std::string run(const Body& body) {
    exec_body(body, root_);
    return std::move(out_);
  }

 private:
  void step() {
    if (++steps_ > limits_.max_steps) {
      throw TemplateError(fmt::format("the template ran more than {} steps; it may loop forever",
                                      limits_.max_steps));
    }
  }

  void emit(const std::string& s) {
    if (out_.size() + s.size() > limits_.max_output_bytes) {
      throw TemplateError(fmt::format("the rendered prompt exceeds {} bytes", limits_.max_output_bytes));
    }
    out_ += s;
  }

  Value checked_size(Value v) const {
    if (v.is_string() && v.as_string().size() > limits_.max_output_bytes) {
      throw TemplateError(fmt::format("a string in the template exceeds {} bytes", limits_.max_output_bytes));
    }
    if (v.is_array() && v.array()->size() > limits_.max_output_bytes / 8) {
      throw TemplateError("a list in the template is too long");
    }
    return v;
  }

  Value lookup(const std::string& name, const Frame& frame) const {
    for (const Frame* f = &frame; f; f = f->parent) {
      auto it = f->vars.find(name);
      if (it != f->vars.end()) return it->second;
    }
    if (const Value* g = globals_.find(name)) return *g;
    return Value::undefined(fmt::format("'{}' is undefined", name));
  }

  Flow exec_body(const Body& body, Frame& frame) {
    for (const auto& node : body) {
      const Flow flow = exec(*node, frame);
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

  Flow exec(const Node& n, Frame& frame) {
    step();
    switch (n.kind) {
      case Node::Kind::kText:
        emit(n.text);
        return Flow::kNormal;
      case Node::Kind::kOutput:
        emit(to_str(eval(*n.expr, frame)));
        return Flow::kNormal;
      case Node::Kind::kIf:
        for (const auto& [cond, body] : n.branches) {
          if (truthy(eval(*cond, frame))) return exec_body(body, frame);
        }
        return exec_body(n.else_body, frame);
      case Node::Kind::kFor:
        exec_for(n, frame);
        return Flow::kNormal;
      case Node::Kind::kSet:
        assign(*n.target, eval(*n.expr, frame), frame);
        return Flow::kNormal;
      case Node::Kind::kSetBlock:
        assign(*n.target, Value(capture(n.body, frame)), frame);
        return Flow::kNormal;
      case Node::Kind::kMacro:
        frame.vars[n.text] = make_macro(n);
        return Flow::kNormal;
      case Node::Kind::kCallBlock:
        emit(to_str(call_with_caller(n, frame)));
        return Flow::kNormal;
      case Node::Kind::kFilterBlock: {
        Frame inner{.vars = {{"\x01filter_body", Value(capture(n.body, frame))}}, .parent = &frame};
        emit(to_str(eval(*n.filter, inner)));
        return Flow::kNormal;
      }
      case Node::Kind::kScope: {
        Frame inner{.vars = {}, .parent = &frame};
        exec_body(n.body, inner);
        return Flow::kNormal;
      }
      case Node::Kind::kBreak:
        return Flow::kBreak;
      case Node::Kind::kContinue:
        return Flow::kContinue;
    }
    return Flow::kNormal;
  }

  std::string capture(const Body& body, Frame& frame) {
    std::string saved = std::move(out_);
    out_.clear();
    Frame inner{.vars = {}, .parent = &frame};
    exec_body(body, inner);
    std::string captured = std::move(out_);
    out_ = std::move(saved);
    return captured;
  }

  void assign(const Expr& target, Value v, Frame& frame) {
    if (target.kind == Expr::Kind::kName) {
      frame.vars[target.name] = std::move(v);
      return;
    }
    if (target.kind == Expr::Kind::kAttr) {
      Value ns = lookup(target.items[0]->name, frame);
      if (!ns.is_object() || !ns.object()->is_namespace) {
        throw TemplateError(fmt::format("cannot assign attribute on non-namespace object (line {})", target.line));
      }
      ns.object()->set(target.name, std::move(v));
      if (std::find(assigned_namespaces_.begin(), assigned_namespaces_.end(), ns.object()) ==
          assigned_namespaces_.end()) {
        assigned_namespaces_.push_back(ns.object());
      }
      return;
    }
    const std::vector<Value> values = iterate(v);
    if (values.size() != target.items.size()) {
      throw TemplateError(fmt::format("{} values to unpack (expected {}, got {})",
                                      values.size() > target.items.size() ? "too many" : "not enough",
                                      target.items.size(), values.size()));
    }
    for (size_t i = 0; i < values.size(); ++i) assign(*target.items[i], values[i], frame);
  }

  Value loop_object(size_t i, const std::vector<Value>& items) {
    const auto n = static_cast<int64_t>(items.size());
    const auto k = static_cast<int64_t>(i);
    Object loop;
    loop.items = {{"index", Value(k + 1)},
                  {"index0", Value(k)},
                  {"revindex", Value(n - k)},
                  {"revindex0", Value(n - k - 1)},
                  {"first", Value(i == 0)},
                  {"last", Value(k == n - 1)},
                  {"length", Value(n)},
                  {"depth", Value(1)},
                  {"depth0", Value(0)},
                  {"previtem", i > 0 ? items[i - 1] : Value::undefined("there is no previous item")},
                  {"nextitem", k + 1 < n ? items[i + 1] : Value::undefined("there is no next item")}};
    loop.items.emplace_back("cycle", Value(Callable{.name = "loop.cycle", .call = [i](CallArgs& args) {
      if (args.positional.empty()) throw TemplateError("no items for cycling given");
      return args.positional[i % args.positional.size()];
    }}));
    return Value(std::move(loop));
  }

  void exec_for(const Node& n, Frame& frame) {
    const Value iterable = eval(*n.expr, frame);
    std::vector<Value> items;
    if (iterable.is_object() && !iterable.object()->is_namespace) {
      for (const auto& [k, _] : iterable.object()->items) items.emplace_back(k);
    } else {
      items = iterate(iterable);
    }
    if (n.filter) {
      std::vector<Value> kept;
      for (const Value& item : items) {
        step();
        Frame probe{.vars = {}, .parent = &frame};
        assign(*n.target, item, probe);
        if (truthy(eval(*n.filter, probe))) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      exec_body(n.else_body, frame);
      return;
    }
    for (size_t i = 0; i < items.size(); ++i) {
      step();
      Frame inner{.vars = {}, .parent = &frame};
      inner.vars["loop"] = loop_object(i, items);
      assign(*n.target, items[i], inner);
      if (exec_body(n.body, inner) == Flow::kBreak) break;
    }
  }

  Value make_macro(const Node& n) {
    const Node* node = &n;
    return Value(Callable{.name = n.text, .call = [this, node](CallArgs& args) { return call_macro(*node, args); }});
  }

  Value call_macro(const Node& n, CallArgs& args) {
    if (++call_depth_ > limits_.max_call_depth) {
      --call_depth_;
      throw TemplateError(fmt::format("macro calls nested deeper than {} (is '{}' recursive?)",
                                      limits_.max_call_depth, n.text));
    }
    Frame frame{.vars = {}, .parent = &root_};
    if (args.positional.size() > n.params.size()) {
      throw TemplateError(fmt::format("macro '{}' takes not more than {} argument(s)", n.text, n.params.size()));
    }
    for (const auto& [k, v] : args.keyword) {
      bool known = k == "caller";
      for (const MacroParam& p : n.params) known |= p.name == k;
      if (!known) throw TemplateError(fmt::format("macro '{}' takes no keyword argument '{}'", n.text, k));
      frame.vars[k] = v;
    }
    for (size_t i = 0; i < n.params.size(); ++i) {
      const MacroParam& p = n.params[i];
      if (i < args.positional.size()) {
        frame.vars[p.name] = args.positional[i];
      } else if (!frame.vars.contains(p.name)) {
        frame.vars[p.name] = p.default_value ? eval(*p.default_value, frame)
                                             : Value::undefined(fmt::format("parameter '{}' was not provided", p.name));
      }
    }
    std::string saved = std::move(out_);
    out_.clear();
    exec_body(n.body, frame);
    std::string result = std::move(out_);
    out_ = std::move(saved);
    --call_depth_;
    return Value(std::move(result));
  }

  Value call_with_caller(const Node& n, Frame& frame) {
    const Node* node = &n;
    Frame* outer = &frame;
    Value caller(Callable{.name = "caller", .call = [this, node, outer](CallArgs&) {
      return Value(capture(node->body, *outer));
    }});
    const Expr& call = *n.expr;
    Value callee = eval(*call.items[0], frame);
    CallArgs args = eval_args(call, frame, 1);
    args.keyword.emplace_back("caller", caller);
    if (!callee.is_callable()) throw TemplateError("the expression after 'call' is not callable");
    return callee.callable().call(args);
  }

  CallArgs eval_args(const Expr& e, Frame& frame, size_t first) {
    CallArgs args;
    for (size_t i = first; i < e.items.size(); ++i) args.positional.push_back(eval(*e.items[i], frame));
    for (const auto& [k, v] : e.kwargs) args.keyword.emplace_back(k, eval(*v, frame));
    return args;
  }

  [[noreturn]] static void fail_undefined(const Value& v, int line) {
    throw TemplateError(fmt::format("{} (line {})", v.undefined_hint(), line));
  }

  Value eval(const Expr& e, Frame& frame);
  Value eval_call(const Expr& e, Frame& frame);
  Value eval_binary(const Expr& e, Frame& frame);
  Value arithmetic(const std::string& op, const Value& a, const Value& b, int line);
  bool compare(const std::string& op, const Value& a, const Value& b);

  const RenderLimits& limits_;
  Object globals_;
  Frame root_;
  std::string out_;
  std::vector<std::shared_ptr<Object>> assigned_namespaces_;  // cleared on exit, see ~Evaluator
  int64_t steps_ = 0;
  int call_depth_ = 0;
};

Value Evaluator::eval(const Expr& e, Frame& frame) {
  switch (e.kind) {
    case Expr::Kind::kLiteral:
      return e.literal;
    case Expr::Kind::kName:
      return lookup(e.name, frame);
    case Expr::Kind::kList:
    case Expr::Kind::kTuple: {
      Array a;
      for (const auto& item : e.items) a.push_back(eval(*item, frame));
      return Value(std::move(a));
    }
    case Expr::Kind::kDict: {
      Object o;
      for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
        const Value key = eval(*e.items[i], frame);
        if (!key.is_string()) throw TemplateError(fmt::format("dict keys must be strings (line {})", e.line));
        o.set(key.as_string(), eval(*e.items[i + 1], frame));
      }
      return Value(std::move(o));
    }
    case Expr::Kind::kAttr: {
      const Value obj = eval(*e.items[0], frame);
      if (obj.is_undefined()) fail_undefined(obj, e.line);
      return get_attribute(obj, e.name);
    }
    case Expr::Kind::kIndex: {
      const Value obj = eval(*e.items[0], frame);
      if (obj.is_undefined()) fail_undefined(obj, e.line);
      return get_item(obj, eval(*e.items[1], frame));
    }
    case Expr::Kind::kSlice: {
      const Value obj = eval(*e.items[0], frame);
      if (obj.is_undefined()) fail_undefined(obj, e.line);
      auto part = [&](size_t i) { return e.items[i] ? eval(*e.items[i], frame) : Value::none(); };
      return slice(obj, part(1), part(2), part(3));
    }
    case Expr::Kind::kCall:
      return checked_size(eval_call(e, frame));
    case Expr::Kind::kFilter: {
      const Value target = eval(*e.items[0], frame);
      return checked_size(apply_filter(e.name, target, eval_args(e, frame, 1)));
    }
    case Expr::Kind::kTest: {
      const Value target = eval(*e.items[0], frame);
      return Value(apply_test(e.name, target, eval_args(e, frame, 1)) != e.negated);
    }
    case Expr::Kind::kUnary: {
      const Value v = eval(*e.items[0], frame);
      if (e.name == "not") return Value(!truthy(v));
      if (v.is_undefined()) fail_undefined(v, e.line);
      if (e.name == "+") return v.is_float() ? v : Value(v.to_int());
      if (v.is_float()) return Value(-v.as_float());
      return Value(-v.to_int());
    }
    case Expr::Kind::kBinary:
      return checked_size(eval_binary(e, frame));
    case Expr::Kind::kCompare: {
      Value left = eval(*e.items[0], frame);
      for (size_t i = 0; i < e.ops.size(); ++i) {
        Value right = eval(*e.items[i + 1], frame);
        if (!compare(e.ops[i], left, right)) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case Expr::Kind::kCond:
      if (truthy(eval(*e.items[0], frame))) return eval(*e.items[1], frame);
      return e.items[2] ? eval(*e.items[2], frame) : Value::undefined("the inline if-expression evaluated to false and no else section was defined");
  }
  return Value();
}

Value Evaluator::eval_call(const Expr& e, Frame& frame) {
  const Expr& callee_expr = *e.items[0];
  Value callee;
  CallArgs args;
  if (callee_expr.kind == Expr::Kind::kAttr) {
    const Value obj = eval(*callee_expr.items[0], frame);
    if (obj.is_undefined()) fail_undefined(obj, e.line);
    args = eval_args(e, frame, 1);
    if (auto result = call_method(obj, callee_expr.name, args)) return std::move(*result);
    callee = get_attribute(obj, callee_expr.name);
  } else {
    callee = eval(callee_expr, frame);
    args = eval_args(e, frame, 1);
  }
  if (callee.is_undefined()) fail_undefined(callee, e.line);
  if (!callee.is_callable()) throw TemplateError(fmt::format("'{}' object is not callable (line {})", type_name(callee), e.line));
  try {
    return callee.callable().call(args);
  } catch (const RaisedError&) {
    throw;
  } catch (const TemplateError& error) {
    const std::string what = error.what();
    if (what.find("(line ") != std::string::npos) throw;
    throw TemplateError(fmt::format("{} (line {})", what, e.line));
  }
}

Value Evaluator::eval_binary(const Expr& e, Frame& frame) {
  if (e.name == "and") {
    Value a = eval(*e.items[0], frame);
    return truthy(a) ? eval(*e.items[1], frame) : a;
  }
  if (e.name == "or") {
    Value a = eval(*e.items[0], frame);
    return truthy(a) ? a : eval(*e.items[1], frame);
  }
  const Value a = eval(*e.items[0], frame);
  const Value b = eval(*e.items[1], frame);
  if (e.name == "~") return Value(to_str(a) + to_str(b));
  if (a.is_undefined()) fail_undefined(a, e.line);
  if (b.is_undefined()) fail_undefined(b, e.line);
  return arithmetic(e.name, a, b, e.line);
}

Value Evaluator::arithmetic(const std::string& op, const Value& a, const Value& b, int line) {
  auto type_error = [&]() -> Value {
    if (op == "+" && a.is_string()) {
      throw TemplateError(fmt::format("can only concatenate str (not \"{}\") to str (line {})", type_name(b), line));
    }
    throw TemplateError(fmt::format("unsupported operand type(s) for {}: '{}' and '{}' (line {})", op,
                                    type_name(a), type_name(b), line));
  };
  if (op == "+") {
    if (a.is_string() && b.is_string()) return Value(a.as_string() + b.as_string());
    if (a.is_array() && b.is_array()) {
      Array out = *a.array();
      out.insert(out.end(), b.array()->begin(), b.array()->end());
      return checked_size(Value(std::move(out)));
    }
  }
  if (op == "*" && (a.is_string() || a.is_array() || b.is_string() || b.is_array())) {
    const Value& seq = a.is_string() || a.is_array() ? a : b;
    const Value& count = &seq == &a ? b : a;
    if (!count.is_int() && !count.is_bool()) return type_error();
    const int64_t n = std::max<int64_t>(0, count.to_int());
    const size_t unit = seq.is_string() ? seq.as_string().size() : seq.array()->size() * 8;
    if (unit > 0 && static_cast<size_t>(n) > limits_.max_output_bytes / unit) {
      throw TemplateError(fmt::format("repetition result exceeds {} bytes (line {})", limits_.max_output_bytes, line));
    }
    if (seq.is_string()) {
      std::string out;
      for (int64_t i = 0; i < n; ++i) out += seq.as_string();
      return Value(std::move(out));
    }
    Array out;
    for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.array()->begin(), seq.array()->end());
    return Value(std::move(out));
  }
  if (!a.is_number() || !b.is_number()) return type_error();
  const bool ints = !a.is_float() && !b.is_float();
  if (op == "/" || op == "//" || op == "%") {
    if (b.to_double() == 0) throw TemplateError(fmt::format("division by zero (line {})", line));
  }
  if (ints) {
    const int64_t x = a.to_int(), y = b.to_int();
    int64_t r = 0;
    if (op == "+" && checked_add(x, y, &r)) return Value(r);
    if (op == "-" && !__builtin_sub_overflow(x, y, &r)) return Value(r);
    if (op == "*" && !__builtin_mul_overflow(x, y, &r)) return Value(r);
    if (op == "//") return Value(x / y - ((x % y != 0) && ((x < 0) != (y < 0)) ? 1 : 0));
    if (op == "%") {
      const int64_t m = x % y;
      return Value(m != 0 && ((m < 0) != (y < 0)) ? m + y : m);
    }
    if (op == "**" && y >= 0) {
      int64_t acc = 1;
      for (int64_t i = 0; i < y; ++i) {
        if (__builtin_mul_overflow(acc, x, &acc)) throw TemplateError(fmt::format("integer overflow in ** (line {})", line));
      }
      return Value(acc);
    }
    if (op != "/" && op != "**") throw TemplateError(fmt::format("integer overflow in {} (line {})", op, line));
  }
  const double x = a.to_double(), y = b.to_double();
  if (op == "+") return Value(x + y);
  if (op == "-") return Value(x - y);
  if (op == "*") return Value(x * y);
  if (op == "/") return Value(x / y);
  if (op == "//") return Value(std::floor(x / y));
  if (op == "%") {
    const double m = std::fmod(x, y);
    return Value(m != 0 && ((m < 0) != (y < 0)) ? m + y : m);
  }
  if (op == "**") return Value(std::pow(x, y));
  return type_error();
}

bool contains(const Value& container, const Value& item) {
  if (container.is_string()) {
    if (!item.is_string()) {
      throw TemplateError(fmt::format("'in <string>' requires string as left operand, not {}", type_name(item)));
    }
    return container.as_string().find(item.as_string()) != std::string::npos;
  }
  if (container.is_object()) return item.is_string() && container.object()->find(item.as_string()) != nullptr;
  for (const Value& v : iterate(container)) {
    if (equals(v, item)) return true;
  }
  return false;
}

bool Evaluator::compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return equals(a, b);
  if (op == "!=") return !equals(a, b);
  if (op == "in") return contains(b, a);
  if (op == "notin") return !contains(b, a);
  if (a.is_undefined()) throw TemplateError(a.undefined_hint());
  if (b.is_undefined()) throw TemplateError(b.undefined_hint());
  if (op == "<") return less_than(a, b);
  if (op == ">") return less_than(b, a);
  if (op == "<=") return !less_than(b, a);
  return !less_than(a, b);  // >=
}

}  // namespace

std::string render_body(const Body& body, const Value& context, const RenderLimits& limits) {
  Evaluator evaluator(context, limits);
  return evaluator.run(body);
}

}  // namespace strata::jinja
