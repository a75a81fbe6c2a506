#include "router/jinja/value.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "common/utf8.h"

namespace strata::jinja {

const Value* Object::find(std::string_view key) const {
  for (const auto& [k, v] : items) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Object::set(const std::string& key, Value value) {
  for (auto& [k, v] : items) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items.emplace_back(key, std::move(value));
}

const Value* CallArgs::get(size_t index, std::string_view name) const {
  for (const auto& [k, v] : keyword) {
    if (k == name) return &v;
  }
  return index < positional.size() ? &positional[index] : nullptr;
}

double Value::to_double() const {
  if (is_float()) return as_float();
  if (is_int()) return static_cast<double>(as_int());
  if (is_bool()) return as_bool() ? 1.0 : 0.0;
  throw TemplateError(fmt::format("expected a number, got {}", type_name(*this)));
}

int64_t Value::to_int() const {
  if (is_int()) return as_int();
  if (is_bool()) return as_bool() ? 1 : 0;
  throw TemplateError(fmt::format("expected an integer, got {}", type_name(*this)));
}

Value from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::none();
    case nlohmann::ordered_json::value_t::boolean:
      return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const auto u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      Array a;
      a.reserve(j.size());
      for (const auto& e : j) a.push_back(from_json(e));
      return Value(std::move(a));
    }
    case nlohmann::ordered_json::value_t::object: {
      Object o;
      o.items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) o.items.emplace_back(it.key(), from_json(it.value()));
      return Value(std::move(o));
    }
    default:
      return Value::none();
  }
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return false;
    case Value::Kind::kBool:
      return v.as_bool();
    case Value::Kind::kInt:
      return v.as_int() != 0;
    case Value::Kind::kFloat:
      return v.as_float() != 0.0;
    case Value::Kind::kString:
      return !v.as_string().empty();
    case Value::Kind::kArray:
      return !v.array()->empty();
    case Value::Kind::kObject:
      return v.object()->is_namespace || !v.object()->items.empty();
    case Value::Kind::kCallable:
      return true;
  }
  return false;
}

namespace {
// Namespaces can hold themselves (`ns.self = ns`): deep walks stop instead of overflowing.
struct WalkGuard {
  WalkGuard() {
    if (++depth > 256) {
      --depth;
      throw TemplateError("value nested too deeply (or refers to itself)");
    }
  }
  ~WalkGuard() { --depth; }
  static thread_local int depth;
};
thread_local int WalkGuard::depth = 0;
}  // namespace

bool equals(const Value& a, const Value& b) {
  WalkGuard guard;
  if (a.is_number() && b.is_number()) {
    if ((a.is_int() || a.is_bool()) && (b.is_int() || b.is_bool())) return a.to_int() == b.to_int();
    return a.to_double() == b.to_double();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kString:
      return a.as_string() == b.as_string();
    case Value::Kind::kArray: {
      const Array& x = *a.array();
      const Array& y = *b.array();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!equals(x[i], y[i])) return false;
      }
      return true;
    }
    case Value::Kind::kObject: {
      if (a.object() == b.object()) return true;
      const Object& x = *a.object();
      const Object& y = *b.object();
      if (x.is_namespace || y.is_namespace || x.items.size() != y.items.size()) return false;
      for (const auto& [k, v] : x.items) {
        const Value* other = y.find(k);
        if (!other || !equals(v, *other)) return false;
      }
      return true;
    }
    case Value::Kind::kCallable:
      return &a.callable() == &b.callable();
    default:
      return false;
  }
}

bool less_than(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if ((a.is_int() || a.is_bool()) && (b.is_int() || b.is_bool())) return a.to_int() < b.to_int();
    return a.to_double() < b.to_double();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();
  if (a.is_array() && b.is_array()) {
    const Array& x = *a.array();
    const Array& y = *b.array();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equals(x[i], y[i])) return less_than(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  throw TemplateError(fmt::format("'<' not supported between instances of '{}' and '{}'",
                                  type_name(a), type_name(b)));
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "undefined";
    case Value::Kind::kNone:
      return "NoneType";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kFloat:
      return "float";
    case Value::Kind::kString:
      return "str";
    case Value::Kind::kArray:
      return "list";
    case Value::Kind::kObject:
      return v.object()->is_namespace ? "Namespace" : "dict";
    case Value::Kind::kCallable:
      return "function";
  }
  return "object";
}

// Python's float repr: the shortest round-tripping digits, fixed notation for exponents in
// [-4, 16), else d.ddde±XX.
std::string repr_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const size_t e_pos = sci.find('e');
  std::string mantissa = sci.substr(0, e_pos);
  const int exponent = std::stoi(sci.substr(e_pos + 1));
  const bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  std::string out = negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
    } else {
      const size_t int_len = static_cast<size_t>(exponent) + 1;
      if (digits.size() <= int_len) {
        out += digits + std::string(int_len - digits.size(), '0') + ".0";
      } else {
        out += digits.substr(0, int_len) + "." + digits.substr(int_len);
      }
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  out += fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', std::abs(exponent));
  return out;
}

namespace {

std::string repr_string(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == static_cast<unsigned char>(quote)) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void append_json(std::string& out, const Value& v, const JsonFormat& f, int depth) {
  if (depth > 256) throw TemplateError("tojson: value nested too deeply");
  auto newline = [&](int level) {
    if (!f.indent) return;
    out += '\n';
    out.append(static_cast<size_t>(*f.indent * level), ' ');
  };
  const std::string item_sep = !f.item_separator.empty() ? f.item_separator : (f.indent ? "," : ", ");
  switch (v.kind()) {
    case Value::Kind::kNone:
      out += "null";
      return;
    case Value::Kind::kBool:
      out += v.as_bool() ? "true" : "false";
      return;
    case Value::Kind::kInt:
      out += std::to_string(v.as_int());
      return;
    case Value::Kind::kFloat: {
      const double d = v.as_float();
      out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity") : repr_float(d);
      return;
    }
    case Value::Kind::kString:
      append_json_string(out, v.as_string());
      return;
    case Value::Kind::kArray: {
      const Array& a = *v.array();
      if (a.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < a.size(); ++i) {
        if (i > 0) out += item_sep;
        newline(depth + 1);
        append_json(out, a[i], f, depth + 1);
      }
      newline(depth);
      out += ']';
      return;
    }
    case Value::Kind::kObject: {
      if (v.object()->is_namespace) break;
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& item : v.object()->items) items.push_back(&item);
      if (f.sort_keys) {
        std::stable_sort(items.begin(), items.end(),
                         [](const auto* a, const auto* b) { return a->first < b->first; });
      }
      if (items.empty()) {
        out += "{}";
        return;
      }
      out += '{';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += item_sep;
        newline(depth + 1);
        append_json_string(out, items[i]->first);
        out += f.key_separator;
        append_json(out, items[i]->second, f, depth + 1);
      }
      newline(depth);
      out += '}';
      return;
    }
    default:
      break;
  }
  throw TemplateError(fmt::format("Object of type {} is not JSON serializable", type_name(v)));
}

}  // namespace

std::string to_str(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "";
    case Value::Kind::kString:
      return v.as_string();
    default:
      return repr(v);
  }
}

std::string repr(const Value& v) {
  WalkGuard guard;
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "";
    case Value::Kind::kNone:
      return "None";
    case Value::Kind::kBool:
      return v.as_bool() ? "True" : "False";
    case Value::Kind::kInt:
      return std::to_string(v.as_int());
    case Value::Kind::kFloat:
      return repr_float(v.as_float());
    case Value::Kind::kString:
      return repr_string(v.as_string());
    case Value::Kind::kArray: {
      std::string out = "[";
      const Array& a = *v.array();
      for (size_t i = 0; i < a.size(); ++i) {
        if (i > 0) out += ", ";
        out += repr(a[i]);
      }
      return out + "]";
    }
    case Value::Kind::kObject: {
      const Object& o = *v.object();
      std::string out = o.is_namespace ? "<Namespace {" : "{";
      for (size_t i = 0; i < o.items.size(); ++i) {
        if (i > 0) out += ", ";
        out += repr_string(o.items[i].first) + ": " + repr(o.items[i].second);
      }
      return out + (o.is_namespace ? "}>" : "}");
    }
    case Value::Kind::kCallable:
      return fmt::format("<function {}>", v.callable().name);
  }
  return "";
}

std::string to_json(const Value& v, const JsonFormat& format) {
  std::string out;
  append_json(out, v, format, 0);
  return out;
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kArray:
      return *v.array();
    case Value::Kind::kObject: {
      std::vector<Value> keys;
      if (v.object()->is_namespace) break;
      for (const auto& [k, _] : v.object()->items) keys.emplace_back(k);
      return keys;
    }
    case Value::Kind::kString: {
      std::vector<Value> chars;
      const std::string& s = v.as_string();
      for (size_t pos = 0; pos < s.size();) {
        const size_t len = std::max<size_t>(1, utf8::char_length(s, pos));
        chars.emplace_back(s.substr(pos, len));
        pos += len;
      }
      return chars;
    }
    default:
      break;
  }
  throw TemplateError(fmt::format("'{}' object is not iterable", type_name(v)));
}

int64_t length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kString: {
      int64_t n = 0;
      const std::string& s = v.as_string();
      for (size_t pos = 0; pos < s.size(); pos += std::max<size_t>(1, utf8::char_length(s, pos))) ++n;
      return n;
    }
    case Value::Kind::kArray:
      return static_cast<int64_t>(v.array()->size());
    case Value::Kind::kObject:
      return static_cast<int64_t>(v.object()->items.size());
    default:
      break;
  }
  throw TemplateError(fmt::format("object of type '{}' has no len()", type_name(v)));
}

}  // namespace strata::jinja
