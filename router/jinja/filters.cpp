// jinja2's built-in filters and tests (jinja2/filters.py, jinja2/tests.py), with HF's tojson.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <unordered_map>

#include "common/utf8.h"
#include "router/jinja/builtins.h"

namespace strata::jinja {
namespace {

using Filter = std::function<Value(const Value&, const CallArgs&)>;
using Test = std::function<bool(const Value&, const CallArgs&)>;

const Value* arg(const CallArgs& a, size_t i, std::string_view name) { return a.get(i, name); }
bool flag(const CallArgs& a, size_t i, std::string_view name) {
  const Value* v = a.get(i, name);
  return v && truthy(*v);
}

std::string ascii_map(const std::string& s, int (*f)(int)) {
  std::string out = s;
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x80) c = static_cast<char>(f(static_cast<unsigned char>(c)));
  }
  return out;
}

// Words start after a character of `separators` (jinja2's title) or after any non-letter
// (Python's str.title) when separators is null.
std::string title_case(const std::string& s, const char* separators) {
  std::string out;
  bool at_start = true;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    const bool letter = std::isalpha(u) != 0;
    out += static_cast<char>(at_start ? std::toupper(u) : std::tolower(u));
    if (separators) {
      at_start = std::strchr(separators, c) != nullptr || std::isspace(u);
    } else {
      at_start = !letter && u < 0x80;
    }
  }
  return out;
}

std::string escape_html(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// json.dumps(ensure_ascii=True): non-ASCII as \uXXXX (UTF-16 surrogate pairs above U+FFFF).
std::string ascii_json(const std::string& s) {
  std::string out;
  for (size_t pos = 0; pos < s.size();) {
    size_t len = 0;
    const char32_t c = utf8::decode(s, pos, &len);
    len = std::max<size_t>(len, 1);
    if (c < 0x80) {
      out += s[pos];
    } else if (c < 0x10000) {
      out += fmt::format("\\u{:04x}", static_cast<uint32_t>(c));
    } else {
      const uint32_t v = static_cast<uint32_t>(c) - 0x10000;
      out += fmt::format("\\u{:04x}\\u{:04x}", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
    }
    pos += len;
  }
  return out;
}

Value tojson(const Value& v, const CallArgs& a) {
  JsonFormat f;
  if (const Value* indent = arg(a, 1, "indent"); indent && !indent->is_none()) {
    if (indent->is_string()) throw TemplateError("tojson: a string indent is not supported; give a number");
    f.indent = static_cast<int>(indent->to_int());
  }
  if (const Value* sep = arg(a, 2, "separators"); sep && !sep->is_none()) {
    if (!sep->is_array() || sep->array()->size() != 2) throw TemplateError("tojson: separators must be a pair of strings");
    f.item_separator = to_str((*sep->array())[0]);
    f.key_separator = to_str((*sep->array())[1]);
  }
  f.sort_keys = flag(a, 3, "sort_keys");
  std::string out = to_json(v, f);
  return Value(flag(a, 0, "ensure_ascii") ? ascii_json(out) : out);
}

// The value compared by sort/unique/min/max: an attribute, lower-cased unless case_sensitive.
Value sort_key(const Value& item, const CallArgs& a, size_t attr_index, size_t case_index) {
  Value key = item;
  if (const Value* attr = arg(a, attr_index, "attribute"); attr && !attr->is_none()) {
    const Value path = split_attribute(to_str(*attr));
    for (const Value& part : *path.array()) key = get_item(key, part);
  }
  if (key.is_string() && !flag(a, case_index, "case_sensitive")) key = Value(ascii_map(key.as_string(), ::tolower));
  return key;
}

}  // namespace

// "a.b.0" → ["a", "b", 0]: jinja2's make_attrgetter paths.
Value split_attribute(const std::string& path) {
  Array parts;
  size_t pos = 0;
  while (true) {
    const size_t dot = path.find('.', pos);
    std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    const bool digits = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    parts.push_back(digits ? Value(static_cast<int64_t>(std::stoll(part))) : Value(part));
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return Value(std::move(parts));
}

namespace {

Value attribute_of(const Value& item, const std::string& path) {
  Value v = item;
  const Value parts = split_attribute(path);
  for (const Value& part : *parts.array()) {
    if (v.is_undefined()) return v;
    v = get_item(v, part);
  }
  return v;
}

Value select(const Value& seq, const CallArgs& a, bool by_attribute, bool keep) {
  Array out;
  size_t next = 0;
  std::string attr;
  if (by_attribute) {
    const Value* name = arg(a, next++, "attribute");
    if (!name) throw TemplateError("selectattr/rejectattr need an attribute name");
    attr = to_str(*name);
  }
  std::string test;
  CallArgs test_args;
  if (next < a.positional.size()) {
    test = to_str(a.positional[next]);
    test_args.positional.assign(a.positional.begin() + static_cast<long>(next) + 1, a.positional.end());
  }
  for (const Value& item : iterate(seq)) {
    const Value subject = by_attribute ? attribute_of(item, attr) : item;
    const bool passed = test.empty() ? truthy(subject) : apply_test(test, subject, test_args);
    if (passed == keep) out.push_back(item);
  }
  return Value(std::move(out));
}

Value map_filter(const Value& seq, const CallArgs& a) {
  Array out;
  if (const Value* attr = a.get(static_cast<size_t>(-1), "attribute")) {
    const Value* fallback = a.get(static_cast<size_t>(-1), "default");
    for (const Value& item : iterate(seq)) {
      Value v = attribute_of(item, to_str(*attr));
      out.push_back(v.is_undefined() && fallback ? *fallback : v);
    }
    return Value(std::move(out));
  }
  if (a.positional.empty()) throw TemplateError("map() needs a filter name or attribute=");
  const std::string name = to_str(a.positional[0]);
  CallArgs rest;
  rest.positional.assign(a.positional.begin() + 1, a.positional.end());
  rest.keyword = a.keyword;
  for (const Value& item : iterate(seq)) out.push_back(apply_filter(name, item, rest));
  return Value(std::move(out));
}

Value sorted(const Value& seq, const CallArgs& a) {
  std::vector<Value> items = iterate(seq);
  std::vector<std::pair<Value, Value>> keyed;
  for (Value& item : items) keyed.emplace_back(sort_key(item, a, 2, 1), std::move(item));
  std::stable_sort(keyed.begin(), keyed.end(), [](const auto& x, const auto& y) { return less_than(x.first, y.first); });
  if (flag(a, 0, "reverse")) std::reverse(keyed.begin(), keyed.end());
  Array out;
  for (auto& [_, v] : keyed) out.push_back(std::move(v));
  return Value(std::move(out));
}

Value unique(const Value& seq, const CallArgs& a) {
  Array out;
  std::vector<Value> seen;
  for (const Value& item : iterate(seq)) {
    Value key = sort_key(item, a, 1, 0);
    if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); })) {
      seen.push_back(std::move(key));
      out.push_back(item);
    }
  }
  return Value(std::move(out));
}

Value extreme(const Value& seq, const CallArgs& a, bool want_max) {
  std::optional<std::pair<Value, Value>> best;
  for (const Value& item : iterate(seq)) {
    Value key = sort_key(item, a, 1, 0);
    if (!best || (want_max ? less_than(best->first, key) : less_than(key, best->first))) best.emplace(key, item);
  }
  if (!best) return Value::undefined(fmt::format("No aggregated item, sequence was empty."));
  return best->second;
}

Value dictsort(const Value& v, const CallArgs& a) {
  if (!v.is_object()) throw TemplateError("dictsort: value is not a dict");
  const std::string by = arg(a, 1, "by") ? to_str(*arg(a, 1, "by")) : "key";
  std::vector<std::pair<std::string, Value>> items = v.object()->items;
  const bool cs = flag(a, 0, "case_sensitive");
  auto key = [&](const std::pair<std::string, Value>& p) {
    Value k = by == "value" ? p.second : Value(p.first);
    return k.is_string() && !cs ? Value(ascii_map(k.as_string(), ::tolower)) : k;
  };
  std::stable_sort(items.begin(), items.end(), [&](const auto& x, const auto& y) { return less_than(key(x), key(y)); });
  if (flag(a, 2, "reverse")) std::reverse(items.begin(), items.end());
  Array out;
  for (auto& [k, val] : items) out.emplace_back(Array{Value(k), val});
  return Value(std::move(out));
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> lines;
  std::string cur;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' || s[i] == '\r') {
      lines.push_back(cur);
      cur.clear();
      if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      cur += s[i];
    }
  }
  if (!cur.empty()) lines.push_back(cur);
  return lines;
}

Value indent(const Value& v, const CallArgs& a) {
  const Value* width = arg(a, 0, "width");
  const std::string pad = !width ? "    " : width->is_string() ? width->as_string() : std::string(static_cast<size_t>(std::max<int64_t>(0, width->to_int())), ' ');
  std::vector<std::string> lines = split_lines(to_str(v) + "\n");
  std::string out;
  if (flag(a, 2, "blank")) {
    for (size_t i = 0; i < lines.size(); ++i) out += (i ? "\n" + pad : "") + lines[i];
  } else {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i == 0) {
        out += lines[0];
      } else {
        out += "\n" + (lines[i].empty() ? "" : pad) + lines[i];
      }
    }
  }
  return Value(flag(a, 1, "first") ? pad + out : out);
}

Value to_int_filter(const Value& v, const CallArgs& a) {
  const Value* fallback = arg(a, 0, "default");
  const Value def = fallback ? *fallback : Value(int64_t{0});
  if (v.is_int() || v.is_bool()) return Value(v.to_int());
  if (v.is_float()) return std::isfinite(v.as_float()) ? Value(static_cast<int64_t>(v.as_float())) : def;
  if (v.is_string()) {
    const std::string s = python_strip(v.as_string(), true, true);
    try {
      size_t used = 0;
      const long long i = std::stoll(s, &used, 10);
      if (used == s.size()) return Value(static_cast<int64_t>(i));
      const double d = std::stod(s, &used);
      if (used == s.size()) return Value(static_cast<int64_t>(d));
    } catch (const std::exception&) {
    }
  }
  return def;
}

Value to_float_filter(const Value& v, const CallArgs& a) {
  const Value* fallback = arg(a, 0, "default");
  const Value def = fallback ? *fallback : Value(0.0);
  if (v.is_number()) return Value(v.to_double());
  if (v.is_string()) {
    const std::string s = python_strip(v.as_string(), true, true);
    try {
      size_t used = 0;
      const double d = std::stod(s, &used);
      if (used == s.size()) return Value(d);
    } catch (const std::exception&) {
    }
  }
  return def;
}

Value round_filter(const Value& v, const CallArgs& a) {
  const int64_t precision = arg(a, 0, "precision") ? arg(a, 0, "precision")->to_int() : 0;
  const std::string method = arg(a, 1, "method") ? to_str(*arg(a, 1, "method")) : "common";
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = v.to_double() * scale;
  const double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::nearbyint(x);
  return Value(r / scale);
}

Value sum_filter(const Value& v, const CallArgs& a) {
  const Value* attr = arg(a, 0, "attribute");
  Value total = arg(a, 1, "start") ? *arg(a, 1, "start") : Value(int64_t{0});
  for (const Value& item : iterate(v)) {
    const Value x = attr && !attr->is_none() ? attribute_of(item, to_str(*attr)) : item;
    if (!x.is_number() || !total.is_number()) throw TemplateError("sum: items must be numbers");
    total = total.is_float() || x.is_float() ? Value(total.to_double() + x.to_double()) : Value(total.to_int() + x.to_int());
  }
  return total;
}

Value batch(const Value& v, const CallArgs& a) {
  const Value* count = arg(a, 0, "linecount");
  if (!count || count->to_int() <= 0) throw TemplateError("batch needs a positive count");
  const auto n = static_cast<size_t>(count->to_int());
  const Value* fill = arg(a, 1, "fill_with");
  Array out, cur;
  for (const Value& item : iterate(v)) {
    cur.push_back(item);
    if (cur.size() == n) out.emplace_back(std::exchange(cur, {}));
  }
  if (!cur.empty()) {
    while (fill && !fill->is_none() && cur.size() < n) cur.push_back(*fill);
    out.emplace_back(std::move(cur));
  }
  return Value(std::move(out));
}

int64_t word_count(const std::string& s) {
  int64_t n = 0;
  bool in_word = false;
  for (unsigned char c : s) {
    const bool w = std::isalnum(c) || c == '_' || c >= 0x80;
    if (w && !in_word) ++n;
    in_word = w;
  }
  return n;
}

Value items_filter(const Value& v) {
  if (v.is_undefined()) return Value(Array{});
  if (!v.is_object()) throw TemplateError(fmt::format("Can only get item pairs from a mapping, not {}", type_name(v)));
  Array out;
  for (const auto& [k, val] : v.object()->items) out.emplace_back(Array{Value(k), val});
  return Value(std::move(out));
}

Value first_or_last(const Value& v, bool last) {
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined(last ? "No last item, sequence was empty." : "No first item, sequence was empty.");
  return last ? items.back() : items.front();
}

Value reverse(const Value& v) {
  if (v.is_string()) {
    std::vector<Value> chars = iterate(v);
    std::string out;
    for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += it->as_string();
    return Value(out);
  }
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  return Value(Array(std::move(items)));
}

const std::unordered_map<std::string, Filter>& filters() {
  static const auto* table = new std::unordered_map<std::string, Filter>{
      {"trim", [](const Value& v, const CallArgs& a) { return Value(python_strip(to_str(v), true, true, arg(a, 0, "chars"))); }},
      {"tojson", tojson},
      {"length", [](const Value& v, const CallArgs&) { return Value(length(v)); }},
      {"count", [](const Value& v, const CallArgs&) { return Value(length(v)); }},
      {"first", [](const Value& v, const CallArgs&) { return first_or_last(v, false); }},
      {"last", [](const Value& v, const CallArgs&) { return first_or_last(v, true); }},
      {"join", [](const Value& v, const CallArgs& a) {
         const std::string sep = arg(a, 0, "d") ? to_str(*arg(a, 0, "d")) : "";
         const Value* attr = arg(a, 1, "attribute");
         std::string out;
         bool first = true;
         for (const Value& item : iterate(v)) {
           if (!first) out += sep;
           first = false;
           out += to_str(attr && !attr->is_none() ? attribute_of(item, to_str(*attr)) : item);
         }
         return Value(std::move(out));
       }},
      {"upper", [](const Value& v, const CallArgs&) { return Value(ascii_map(to_str(v), ::toupper)); }},
      {"lower", [](const Value& v, const CallArgs&) { return Value(ascii_map(to_str(v), ::tolower)); }},
      {"title", [](const Value& v, const CallArgs&) { return Value(title_case(to_str(v), "-({[<")); }},
      {"\x01str_title", [](const Value& v, const CallArgs&) { return Value(title_case(to_str(v), nullptr)); }},
      {"capitalize", [](const Value& v, const CallArgs&) {
         std::string s = ascii_map(to_str(v), ::tolower);
         if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
         return Value(s);
       }},
      {"replace", [](const Value& v, const CallArgs& a) {
         CallArgs method_args = a;
         return *call_method(Value(to_str(v)), "replace", method_args);
       }},
      {"default", [](const Value& v, const CallArgs& a) {
         const bool boolean = flag(a, 1, "boolean");
         if (v.is_undefined() || (boolean && !truthy(v))) return arg(a, 0, "default_value") ? *arg(a, 0, "default_value") : Value("");
         return v;
       }},
      {"list", [](const Value& v, const CallArgs&) { return Value(Array(iterate(v))); }},
      {"items", [](const Value& v, const CallArgs&) { return items_filter(v); }},
      {"selectattr", [](const Value& v, const CallArgs& a) { return select(v, a, true, true); }},
      {"rejectattr", [](const Value& v, const CallArgs& a) { return select(v, a, true, false); }},
      {"select", [](const Value& v, const CallArgs& a) { return select(v, a, false, true); }},
      {"reject", [](const Value& v, const CallArgs& a) { return select(v, a, false, false); }},
      {"map", map_filter},
      {"string", [](const Value& v, const CallArgs&) { return Value(to_str(v)); }},
      {"int", to_int_filter},
      {"float", to_float_filter},
      {"round", round_filter},
      {"abs", [](const Value& v, const CallArgs&) { return v.is_float() ? Value(std::fabs(v.as_float())) : Value(std::abs(v.to_int())); }},
      {"unique", unique},
      {"sort", sorted},
      {"dictsort", dictsort},
      {"safe", [](const Value& v, const CallArgs&) { return v; }},
      {"escape", [](const Value& v, const CallArgs&) { return Value(escape_html(to_str(v))); }},
      {"e", [](const Value& v, const CallArgs&) { return Value(escape_html(to_str(v))); }},
      {"forceescape", [](const Value& v, const CallArgs&) { return Value(escape_html(to_str(v))); }},
      {"indent", indent},
      {"wordcount", [](const Value& v, const CallArgs&) { return Value(word_count(to_str(v))); }},
      {"reverse", [](const Value& v, const CallArgs&) { return reverse(v); }},
      {"sum", sum_filter},
      {"min", [](const Value& v, const CallArgs& a) { return extreme(v, a, false); }},
      {"max", [](const Value& v, const CallArgs& a) { return extreme(v, a, true); }},
      {"batch", batch},
      {"attr", [](const Value& v, const CallArgs& a) { return get_attribute(v, arg(a, 0, "name") ? to_str(*arg(a, 0, "name")) : ""); }},
  };
  return *table;
}

bool divisible(const Value& v, int64_t by) {
  if (by == 0) throw TemplateError("integer division or modulo by zero");
  return v.to_int() % by == 0;
}

const std::unordered_map<std::string, Test>& tests() {
  auto cmp = [](std::function<bool(const Value&, const Value&)> f) {
    return [f](const Value& v, const CallArgs& a) {
      const Value* other = arg(a, 0, "other");
      if (!other) throw TemplateError("comparison test needs an argument");
      return f(v, *other);
    };
  };
  static const auto* table = new std::unordered_map<std::string, Test>{
      {"defined", [](const Value& v, const CallArgs&) { return !v.is_undefined(); }},
      {"undefined", [](const Value& v, const CallArgs&) { return v.is_undefined(); }},
      {"none", [](const Value& v, const CallArgs&) { return v.is_none(); }},
      {"string", [](const Value& v, const CallArgs&) { return v.is_string(); }},
      {"number", [](const Value& v, const CallArgs&) { return v.is_number(); }},
      {"integer", [](const Value& v, const CallArgs&) { return v.is_int(); }},
      {"float", [](const Value& v, const CallArgs&) { return v.is_float(); }},
      {"boolean", [](const Value& v, const CallArgs&) { return v.is_bool(); }},
      {"true", [](const Value& v, const CallArgs&) { return v.is_bool() && v.as_bool(); }},
      {"false", [](const Value& v, const CallArgs&) { return v.is_bool() && !v.as_bool(); }},
      {"mapping", [](const Value& v, const CallArgs&) { return v.is_object() && !v.object()->is_namespace; }},
      {"iterable", [](const Value& v, const CallArgs&) {
         return v.is_undefined() || v.is_string() || v.is_array() || (v.is_object() && !v.object()->is_namespace);
       }},
      {"sequence", [](const Value& v, const CallArgs&) {
         return v.is_undefined() || v.is_string() || v.is_array() || (v.is_object() && !v.object()->is_namespace);
       }},
      {"callable", [](const Value& v, const CallArgs&) { return v.is_callable(); }},
      {"even", [](const Value& v, const CallArgs&) { return divisible(v, 2); }},
      {"odd", [](const Value& v, const CallArgs&) { return !divisible(v, 2); }},
      {"divisibleby", [](const Value& v, const CallArgs& a) { return divisible(v, arg(a, 0, "num") ? arg(a, 0, "num")->to_int() : 0); }},
      {"lower", [](const Value& v, const CallArgs&) { const std::string s = to_str(v); return ascii_map(s, ::tolower) == s && ascii_map(s, ::toupper) != s; }},
      {"upper", [](const Value& v, const CallArgs&) { const std::string s = to_str(v); return ascii_map(s, ::toupper) == s && ascii_map(s, ::tolower) != s; }},
      {"escaped", [](const Value&, const CallArgs&) { return false; }},
      {"sameas", cmp([](const Value& a, const Value& b) {
         if (a.kind() != b.kind()) return false;
         if (a.is_array()) return a.array() == b.array();
         if (a.is_object()) return a.object() == b.object();
         return equals(a, b);
       })},
      {"in", [](const Value& v, const CallArgs& a) {
         const Value* seq = arg(a, 0, "seq");
         if (!seq) throw TemplateError("the `in` test needs a sequence");
         if (seq->is_string()) return v.is_string() && seq->as_string().find(v.as_string()) != std::string::npos;
         if (seq->is_object()) return v.is_string() && seq->object()->find(v.as_string()) != nullptr;
         for (const Value& x : iterate(*seq)) {
           if (equals(x, v)) return true;
         }
         return false;
       }},
  };
  static bool aliased = [cmp] {
    auto& t = *const_cast<std::unordered_map<std::string, Test>*>(table);
    auto eq = [](const Value& a, const Value& b) { return equals(a, b); };
    auto ne = [](const Value& a, const Value& b) { return !equals(a, b); };
    auto lt = [](const Value& a, const Value& b) { return less_than(a, b); };
    auto le = [](const Value& a, const Value& b) { return !less_than(b, a); };
    auto gt = [](const Value& a, const Value& b) { return less_than(b, a); };
    auto ge = [](const Value& a, const Value& b) { return !less_than(a, b); };
    for (const char* n : {"equalto", "eq", "=="}) t[n] = cmp(eq);
    for (const char* n : {"ne", "!="}) t[n] = cmp(ne);
    for (const char* n : {"lt", "lessthan", "<"}) t[n] = cmp(lt);
    for (const char* n : {"le", "<="}) t[n] = cmp(le);
    for (const char* n : {"gt", "greaterthan", ">"}) t[n] = cmp(gt);
    for (const char* n : {"ge", ">="}) t[n] = cmp(ge);
    return true;
  }();
  (void)aliased;
  return *table;
}

}  // namespace

bool has_filter(std::string_view name) { return filters().contains(std::string(name)) || name == "d"; }
bool has_test(std::string_view name) { return tests().contains(std::string(name)); }

Value apply_filter(const std::string& name, const Value& target, const CallArgs& args) {
  const auto& table = filters();
  auto it = table.find(name == "d" ? std::string("default") : name);
  if (it == table.end()) throw TemplateError(fmt::format("No filter named '{}'.", name));
  if (target.is_undefined() && (name == "tojson" || name == "abs" || name == "round" || name == "sum")) {
    throw TemplateError(target.undefined_hint());
  }
  return it->second(target, args);
}

bool apply_test(const std::string& name, const Value& target, const CallArgs& args) {
  const auto& table = tests();
  auto it = table.find(name);
  if (it == table.end()) throw TemplateError(fmt::format("No test named '{}'.", name));
  return it->second(target, args);
}

}  // namespace strata::jinja
