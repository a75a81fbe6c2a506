#include "router/jinja/builtins.h"

#include <fmt/format.h>

#include <ctime>

#include "common/utf8.h"

namespace strata::jinja {
namespace {

bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

std::vector<std::string> code_points(const std::string& s) {
  std::vector<std::string> out;
  for (size_t pos = 0; pos < s.size();) {
    const size_t len = std::max<size_t>(1, utf8::char_length(s, pos));
    out.push_back(s.substr(pos, len));
    pos += len;
  }
  return out;
}

const std::string& string_arg(const CallArgs& args, size_t index, std::string_view name, std::string_view method) {
  const Value* v = args.get(index, name);
  if (!v || !v->is_string()) {
    throw TemplateError(fmt::format("{}() needs a string argument `{}`", method, name));
  }
  return v->as_string();
}

// str.split(sep=None, maxsplit=-1).
Value split(const std::string& s, const Value* sep, int64_t maxsplit) {
  Array out;
  if (!sep || sep->is_none()) {
    size_t pos = 0;
    while (pos < s.size()) {
      while (pos < s.size() && is_python_space(static_cast<unsigned char>(s[pos]))) ++pos;
      if (pos >= s.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        std::string rest = s.substr(pos);
        while (!rest.empty() && is_python_space(static_cast<unsigned char>(rest.back()))) rest.pop_back();
        out.emplace_back(rest);
        break;
      }
      size_t end = pos;
      while (end < s.size() && !is_python_space(static_cast<unsigned char>(s[end]))) ++end;
      out.emplace_back(s.substr(pos, end - pos));
      pos = end;
    }
    return Value(std::move(out));
  }
  if (!sep->is_string() || sep->as_string().empty()) throw TemplateError("split(): empty separator");
  const std::string& d = sep->as_string();
  size_t pos = 0;
  while (true) {
    const size_t at = s.find(d, pos);
    if (at == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit)) {
      out.emplace_back(s.substr(pos));
      break;
    }
    out.emplace_back(s.substr(pos, at - pos));
    pos = at + d.size();
  }
  return Value(std::move(out));
}

bool prefix_test(const std::string& s, const Value& what, bool suffix) {
  auto test = [&](const Value& v) {
    if (!v.is_string()) throw TemplateError("startswith()/endswith() need a string or a tuple of strings");
    const std::string& p = v.as_string();
    return suffix ? s.ends_with(p) : s.starts_with(p);
  };
  if (what.is_array()) {
    for (const Value& v : *what.array()) {
      if (test(v)) return true;
    }
    return false;
  }
  return test(what);
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  std::string out;
  if (from.empty()) {
    int64_t done = 0;
    for (const std::string& c : code_points(s)) {
      if (count < 0 || done++ < count) out += to;
      out += c;
    }
    if (count < 0 || done < count) out += to;
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (true) {
    const size_t at = s.find(from, pos);
    if (at == std::string::npos || (count >= 0 && done >= count)) break;
    out.append(s, pos, at - pos).append(to);
    pos = at + from.size();
    ++done;
  }
  return out + s.substr(pos);
}

std::optional<Value> string_method(const std::string& s, const std::string& name, const CallArgs& args) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    return Value(python_strip(s, name != "rstrip", name != "lstrip", args.get(0, "chars")));
  }
  if (name == "split") {
    const Value* max = args.get(1, "maxsplit");
    return split(s, args.get(0, "sep"), max ? max->to_int() : -1);
  }
  if (name == "startswith" || name == "endswith") {
    const Value* what = args.get(0, "prefix");
    if (!what) throw TemplateError(fmt::format("{}() takes at least 1 argument (0 given)", name));
    return Value(prefix_test(s, *what, name == "endswith"));
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    CallArgs none;
    return apply_filter(name == "title" ? "\x01str_title" : name, Value(s), none);
  }
  if (name == "replace") {
    const Value* count = args.get(2, "count");
    return Value(replace_all(s, string_arg(args, 0, "old", name), string_arg(args, 1, "new", name),
                             count ? count->to_int() : -1));
  }
  if (name == "find" || name == "rfind" || name == "count") {
    const std::string& sub = string_arg(args, 0, "sub", name);
    if (name == "count") {
      if (sub.empty()) return Value(static_cast<int64_t>(code_points(s).size()) + 1);
      int64_t n = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Value(n);
    }
    const size_t at = name == "find" ? s.find(sub) : s.rfind(sub);
    if (at == std::string::npos) return Value(int64_t{-1});
    return Value(static_cast<int64_t>(code_points(s.substr(0, at)).size()));
  }
  if (name == "join") {
    const Value* items = args.get(0, "iterable");
    if (!items) throw TemplateError("join() takes exactly one argument");
    std::string out;
    bool first = true;
    for (const Value& v : iterate(*items)) {
      if (!v.is_string()) throw TemplateError(fmt::format("sequence item: expected str instance, {} found", type_name(v)));
      if (!first) out += s;
      first = false;
      out += v.as_string();
    }
    return Value(std::move(out));
  }
  if (name == "isdigit" || name == "isspace" || name == "isalpha" || name == "isalnum") {
    if (s.empty()) return Value(false);
    for (unsigned char c : s) {
      const bool ok = name == "isdigit"   ? std::isdigit(c)
                      : name == "isspace" ? std::isspace(c)
                      : name == "isalpha" ? std::isalpha(c)
                                          : std::isalnum(c);
      if (!ok) return Value(false);
    }
    return Value(true);
  }
  return std::nullopt;
}

std::optional<Value> dict_method(const Object& o, const std::string& name, const CallArgs& args) {
  if (name == "items") {
    Array out;
    for (const auto& [k, v] : o.items) out.emplace_back(Array{Value(k), v});
    return Value(std::move(out));
  }
  if (name == "keys" || name == "values") {
    Array out;
    for (const auto& [k, v] : o.items) out.push_back(name == "keys" ? Value(k) : v);
    return Value(std::move(out));
  }
  if (name == "get") {
    const Value* key = args.get(0, "key");
    if (!key) throw TemplateError("get expected at least 1 argument, got 0");
    const Value* found = key->is_string() ? o.find(key->as_string()) : nullptr;
    if (found) return *found;
    const Value* fallback = args.get(1, "default");
    return fallback ? *fallback : Value::none();
  }
  return std::nullopt;
}

bool is_mutating(const std::string& name) {
  return name == "append" || name == "extend" || name == "insert" || name == "pop" || name == "remove" ||
         name == "clear" || name == "update" || name == "setdefault" || name == "popitem" ||
         name == "sort" || name == "reverse";
}

Value range(CallArgs& args) {
  int64_t start = 0, stop = 0, step = 1;
  if (args.positional.size() == 1) {
    stop = args.positional[0].to_int();
  } else if (args.positional.size() >= 2) {
    start = args.positional[0].to_int();
    stop = args.positional[1].to_int();
    if (args.positional.size() > 2) step = args.positional[2].to_int();
  } else {
    throw TemplateError("range expected at least 1 argument, got 0");
  }
  if (step == 0) throw TemplateError("range() arg 3 must not be zero");
  constexpr int64_t kMaxRange = 1'000'000;
  Array out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (static_cast<int64_t>(out.size()) >= kMaxRange) {
      throw TemplateError(fmt::format("range() is limited to {} items", kMaxRange));
    }
    out.emplace_back(i);
  }
  return Value(std::move(out));
}

Value strftime_now(CallArgs& args) {
  const Value* format = args.get(0, "format");
  if (!format || !format->is_string()) throw TemplateError("strftime_now() needs a format string");
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buf[512];
  const size_t n = std::strftime(buf, sizeof(buf), format->as_string().c_str(), &local);
  return Value(std::string(buf, n));
}

Value make_object(CallArgs& args, bool is_namespace) {
  Object o;
  o.is_namespace = is_namespace;
  for (const Value& p : args.positional) {
    if (!p.is_object()) throw TemplateError("namespace()/dict() take a dict or keyword arguments");
    for (const auto& [k, v] : p.object()->items) o.set(k, v);
  }
  for (const auto& [k, v] : args.keyword) o.set(k, v);
  return Value(std::move(o));
}

}  // namespace

std::string python_strip(const std::string& s, bool left, bool right, const Value* chars) {
  const std::vector<std::string> cps = code_points(s);
  std::vector<std::string> set;
  const bool custom = chars && !chars->is_none() && !chars->is_undefined();
  if (custom) {
    if (!chars->is_string()) throw TemplateError("strip arg must be None or str");
    set = code_points(chars->as_string());
  }
  auto strippable = [&](const std::string& c) {
    if (custom) return std::find(set.begin(), set.end(), c) != set.end();
    size_t len = 0;
    return is_python_space(utf8::decode(c, 0, &len));
  };
  size_t begin = 0, end = cps.size();
  while (left && begin < end && strippable(cps[begin])) ++begin;
  while (right && end > begin && strippable(cps[end - 1])) --end;
  std::string out;
  for (size_t i = begin; i < end; ++i) out += cps[i];
  return out;
}

Value get_attribute(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) throw TemplateError(obj.undefined_hint());
  if (obj.is_object()) {
    if (const Value* v = obj.object()->find(name)) return *v;
  }
  const std::string owner = obj.is_object() && !obj.object()->is_namespace ? "dict object"
                            : obj.is_none()                                 ? "None"
                                                                            : type_name(obj) + " object";
  return Value::undefined(fmt::format("'{}' has no attribute '{}'", owner, name));
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) throw TemplateError(obj.undefined_hint());
  if ((obj.is_array() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    std::vector<std::string> chars;
    if (obj.is_string()) chars = code_points(obj.as_string());
    const auto n = static_cast<int64_t>(obj.is_array() ? obj.array()->size() : chars.size());
    int64_t i = key.to_int();
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value::undefined(fmt::format("{} object has no element {}", type_name(obj), key.to_int()));
    return obj.is_array() ? (*obj.array())[static_cast<size_t>(i)] : Value(chars[static_cast<size_t>(i)]);
  }
  if (key.is_string()) return get_attribute(obj, key.as_string());
  return Value::undefined(fmt::format("'{} object' has no attribute '{}'", type_name(obj), to_str(key)));
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step_v) {
  std::vector<Value> items;
  if (obj.is_string()) {
    for (std::string& c : code_points(obj.as_string())) items.emplace_back(std::move(c));
  } else if (obj.is_array()) {
    items = *obj.array();
  } else {
    throw TemplateError(fmt::format("'{}' object is not subscriptable", type_name(obj)));
  }
  const auto n = static_cast<int64_t>(items.size());
  const int64_t step = step_v.is_none() ? 1 : step_v.to_int();
  if (step == 0) throw TemplateError("slice step cannot be zero");
  auto clamp = [&](const Value& v, int64_t fallback) {
    if (v.is_none()) return fallback;
    int64_t i = v.to_int();
    if (i < 0) i += n;
    if (step > 0) return std::clamp<int64_t>(i, 0, n);
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  const int64_t lo = clamp(start, step > 0 ? 0 : n - 1);
  const int64_t hi = clamp(stop, step > 0 ? n : -1);
  std::vector<Value> out;
  for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) out.push_back(items[static_cast<size_t>(i)]);
  if (!obj.is_string()) return Value(std::move(out));
  std::string s;
  for (const Value& c : out) s += c.as_string();
  return Value(std::move(s));
}

std::optional<Value> call_method(const Value& obj, const std::string& name, const CallArgs& args) {
  if (obj.is_string()) return string_method(obj.as_string(), name, args);
  if (obj.is_object() && !obj.object()->is_namespace) {
    if (is_mutating(name)) throw TemplateError(fmt::format("access to attribute '{}' of 'dict' object is unsafe.", name));
    return dict_method(*obj.object(), name, args);
  }
  if (obj.is_array() && is_mutating(name)) {
    throw TemplateError(fmt::format("access to attribute '{}' of 'list' object is unsafe.", name));
  }
  return std::nullopt;
}

Object make_globals() {
  Object g;
  g.set("range", Value(Callable{.name = "range", .call = range}));
  g.set("dict", Value(Callable{.name = "dict", .call = [](CallArgs& a) { return make_object(a, false); }}));
  g.set("namespace", Value(Callable{.name = "namespace", .call = [](CallArgs& a) { return make_object(a, true); }}));
  g.set("strftime_now", Value(Callable{.name = "strftime_now", .call = strftime_now}));
  g.set("raise_exception", Value(Callable{.name = "raise_exception", .call = [](CallArgs& a) -> Value {
    const Value* message = a.get(0, "message");
    throw RaisedError(message ? to_str(*message) : "");
  }}));
  return g;
}

}  // namespace strata::jinja
