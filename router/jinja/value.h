// The values a chat template computes with: Python's types as Jinja2 sees them.
//
// Design note: templates are written against Python semantics (HF renders them with jinja2),
// so the value type mirrors Python's: None, bool, int, float, str, list, dict (insertion
// ordered, as Python's and as the request's JSON gives it), plus Jinja2's Undefined (falsy,
// renders as "", `is defined` false; using it further is an error naming what was missing),
// namespace() objects and callables (macros, globals). Lists and dicts are shared by
// reference, as in Python: `ns.x = ...` and a macro that reads a list see one object.
// Output helpers reproduce Python byte for byte where templates print values: str(), repr()
// and HF's tojson (json.dumps(ensure_ascii=False)).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace strata::jinja {

// Raised inside the interpreter and turned into a Status at its API (router/jinja/template.h);
// it never leaves the jinja library.
class TemplateError : public std::runtime_error {
 public:
  explicit TemplateError(const std::string& message) : std::runtime_error(message) {}
};

class Value;
using Array = std::vector<Value>;

struct Object {
  std::vector<std::pair<std::string, Value>> items;  // insertion order
  bool is_namespace = false;                         // namespace(): attributes may be assigned

  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value value);
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  // The keyword `name`, else positional[index], else nullptr.
  const Value* get(size_t index, std::string_view name) const;
};

struct Callable {
  std::string name;
  std::function<Value(CallArgs&)> call;
};

struct Undefined {
  std::string hint;  // "'x' is undefined", "'dict object' has no attribute 'y'"
};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kArray, kObject, kCallable };

  Value() : v_(Undefined{}) {}
  static Value undefined(std::string hint) { return Value(Undefined{std::move(hint)}); }
  static Value none() { return Value(std::monostate{}); }
  Value(bool b) : v_(b) {}
  Value(int64_t i) : v_(i) {}
  Value(int i) : v_(int64_t{i}) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(Array a) : v_(std::make_shared<Array>(std::move(a))) {}
  Value(Object o) : v_(std::make_shared<Object>(std::move(o))) {}
  Value(std::shared_ptr<Array> a) : v_(std::move(a)) {}
  Value(std::shared_ptr<Object> o) : v_(std::move(o)) {}
  Value(Callable c) : v_(std::make_shared<Callable>(std::move(c))) {}

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_array() const { return kind() == Kind::kArray; }
  bool is_object() const { return kind() == Kind::kObject; }
  bool is_callable() const { return kind() == Kind::kCallable; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_float() const { return std::get<double>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const std::shared_ptr<Array>& array() const { return std::get<std::shared_ptr<Array>>(v_); }
  const std::shared_ptr<Object>& object() const { return std::get<std::shared_ptr<Object>>(v_); }
  const Callable& callable() const { return *std::get<std::shared_ptr<Callable>>(v_); }
  const std::string& undefined_hint() const { return std::get<Undefined>(v_).hint; }

  // Python's number coercions (bool counts as an int); errors on non-numbers.
  double to_double() const;
  int64_t to_int() const;  // ints and bools only

 private:
  explicit Value(Undefined u) : v_(std::move(u)) {}
  explicit Value(std::monostate n) : v_(n) {}
  std::variant<Undefined, std::monostate, bool, int64_t, double, std::string,
               std::shared_ptr<Array>, std::shared_ptr<Object>, std::shared_ptr<Callable>>
      v_;
};

// JSON in (an ordered_json keeps the request's key order); numbers keep int/float apart.
Value from_json(const nlohmann::ordered_json& j);

// Python's truth value; Undefined is falsy.
bool truthy(const Value& v);
// Python's ==, deep for lists and dicts; 1 == 1.0 == True.
bool equals(const Value& a, const Value& b);
// Python's <: numbers with numbers, strings with strings, lists elementwise; else an error.
bool less_than(const Value& a, const Value& b);

// Jinja2's name for the type in messages ("dict object", "str object", "undefined").
std::string type_name(const Value& v);
// What `{{ v }}` prints: Python's str() (Undefined prints "").
std::string to_str(const Value& v);
// Python's repr().
std::string repr(const Value& v);
std::string repr_float(double d);

struct JsonFormat {
  std::optional<int> indent;                      // None: one line
  std::string item_separator;                     // default ", " (one line) or "," (indented)
  std::string key_separator = ": ";
  bool sort_keys = false;
};
// HF's tojson: json.dumps(v, ensure_ascii=False, indent, separators, sort_keys).
std::string to_json(const Value& v, const JsonFormat& format);

// Iterates lists (elements), dicts (keys), strings (characters); else an error.
std::vector<Value> iterate(const Value& v);
// len(): strings in code points, lists, dicts; Undefined is 0.
int64_t length(const Value& v);

}  // namespace strata::jinja
