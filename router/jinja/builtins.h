// Jinja2's filters, tests and globals, and the Python methods templates call on strings and
// dicts (`content.strip()`, `message.get('x')`), with jinja2's and Python's semantics.
#pragma once

#include <optional>
#include <string>

#include "router/jinja/value.h"

namespace strata::jinja {

// `obj.name` as jinja2 resolves it for data: a dict's key; Undefined (with a hint naming the
// attribute) when absent. Throws on an Undefined `obj`, as jinja2 does.
Value get_attribute(const Value& obj, const std::string& name);
// `obj[key]`: list/str index (negative from the end), dict key; Undefined when absent.
Value get_item(const Value& obj, const Value& key);
// Python's obj[start:stop:step] on lists and strings (code points).
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// Parse-time checks: jinja2 refuses unknown filter and test names when it compiles.
bool has_filter(std::string_view name);
bool has_test(std::string_view name);
// "a.b.0" → ["a", "b", 0]: the attribute paths of map(attribute=), selectattr, sort.
Value split_attribute(const std::string& path);

Value apply_filter(const std::string& name, const Value& target, const CallArgs& args);
bool apply_test(const std::string& name, const Value& target, const CallArgs& args);
// A Python method of a str, dict or list; nullopt when `obj` has no method `name` (then the
// caller looks the name up as data). Mutating list/dict methods are refused as jinja2's
// ImmutableSandboxedEnvironment refuses them.
std::optional<Value> call_method(const Value& obj, const std::string& name, const CallArgs& args);

// range, dict, namespace, raise_exception (its message becomes the render error's, verbatim),
// strftime_now (local time, as HF's datetime.now().strftime).
Object make_globals();

// Thrown by raise_exception: the render error is exactly the template's message.
class RaisedError : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

// Python's str.strip()-family whitespace, over UTF-8.
std::string python_strip(const std::string& s, bool left, bool right, const Value* chars = nullptr);

}  // namespace strata::jinja
