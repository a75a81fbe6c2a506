#include "common/grammar/json_schema.h"

#include <map>
#include <set>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace strata::grammar {
namespace {

using json = nlohmann::ordered_json;

// The JSON rules every compiled schema shares. `ws` is bounded: a model is not to stall in
// blanks. Strings and numbers are unbounded in length; max_tokens ends them.
constexpr std::string_view kJsonRules = R"(
ws      ::= [ \t\n]{0,4}
string  ::= "\"" char* "\""
char    ::= [^"\\\x00-\x1f] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )
int     ::= "0" | [1-9] [0-9]*
number  ::= "-"? int ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )?
integer ::= "-"? int
boolean ::= "true" | "false"
null    ::= "null"
value   ::= object | array | string | number | boolean | null
object  ::= "{" ws ( string ws ":" ws value ws ( "," ws string ws ":" ws value ws )* )? "}"
array   ::= "[" ws ( value ws ( "," ws value ws )* )? "]"
two     ::= [0-9]{2}
date    ::= [0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] )
time    ::= ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]+ )? ( "Z" | [+-] two ":" two )
hex     ::= [0-9a-fA-F]
uuid    ::= hex{8} "-" hex{4} "-" hex{4} "-" hex{4} "-" hex{12}
)";

constexpr int kMaxBound = 1000;  // the GBNF parser's largest repetition bound

const std::set<std::string> kAnnotations = {"title", "description", "default", "examples", "$schema", "$id",
                                            "$comment", "$defs", "definitions"};
const std::set<std::string> kKeywords = {"type", "properties", "required", "additionalProperties", "enum",
                                         "const", "items", "prefixItems", "minItems", "maxItems", "anyOf",
                                         "oneOf", "allOf", "$ref", "minLength", "maxLength", "format"};

// A GBNF literal matching exactly `text` (UTF-8 passes through).
std::string literal(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += fmt::format("\\x{:02X}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string bounds(int64_t min, int64_t max) {
  if (max < 0 || max > kMaxBound) return fmt::format("{{{},}}", min);
  return fmt::format("{{{},{}}}", min, max);
}

class SchemaCompiler {
 public:
  explicit SchemaCompiler(const json& root) : root_(root) {}

  StatusOr<std::string> compile() {
    STRATA_ASSIGN_OR_RETURN(std::string root, expression(root_, "#"));
    return fmt::format("root ::= {}\n{}{}", root, rules_, kJsonRules);
  }

 private:
  // A GBNF expression matching the documents of `s` (at JSON pointer `where`).
  StatusOr<std::string> expression(const json& s, const std::string& where) {
    if (s.is_boolean()) {
      if (s.get<bool>()) return std::string("value");
      return invalid_argument("schema `false` at {} accepts no document", where);
    }
    if (!s.is_object()) return invalid_argument("the schema at {} must be an object or a boolean", where);
    for (const auto& [key, unused] : s.items()) {
      if (!kKeywords.count(key) && !kAnnotations.count(key)) {
        return invalid_argument("unsupported JSON Schema keyword `{}` at {}; supported: {}", key, where,
                                fmt::join(kKeywords, ", "));
      }
    }
    if (s.contains("$ref")) return reference(s["$ref"], where);
    if (s.contains("const")) return literal(s["const"].dump());
    if (s.contains("enum")) return enumeration(s["enum"], where);
    for (const char* key : {"anyOf", "oneOf"}) {
      if (s.contains(key)) return alternatives(s[key], fmt::format("{}/{}", where, key));
    }
    if (s.contains("allOf")) {
      if (!s["allOf"].is_array() || s["allOf"].size() != 1) {
        return invalid_argument("`allOf` at {} is supported with one schema only", where);
      }
      return expression(s["allOf"][0], where + "/allOf/0");
    }
    return typed(s, where);
  }

  StatusOr<std::string> typed(const json& s, const std::string& where) {
    if (!s.contains("type")) {
      if (s.contains("properties") || s.contains("additionalProperties")) return object(s, where);
      if (s.contains("items") || s.contains("prefixItems")) return array(s, where);
      return std::string("value");
    }
    const json& type = s["type"];
    if (type.is_string()) return of_type(s, type.get<std::string>(), where);
    if (!type.is_array() || type.empty()) return invalid_argument("`type` at {} must be a name or a list", where);
    std::vector<std::string> options;
    for (const json& t : type) {
      if (!t.is_string()) return invalid_argument("`type` at {} lists a non-string", where);
      STRATA_ASSIGN_OR_RETURN(std::string e, of_type(s, t.get<std::string>(), where));
      options.push_back(std::move(e));
    }
    return fmt::format("( {} )", fmt::join(options, " | "));
  }

  StatusOr<std::string> of_type(const json& s, const std::string& type, const std::string& where) {
    if (type == "string") return string(s, where);
    if (type == "number" || type == "integer" || type == "boolean" || type == "null") return type;
    if (type == "object") return object(s, where);
    if (type == "array") return array(s, where);
    return invalid_argument("unknown `type` `{}` at {}", type, where);
  }

  StatusOr<std::string> string(const json& s, const std::string& where) {
    if (s.contains("format")) {
      const std::string format = s["format"].get<std::string>();
      if (format == "date" || format == "time" || format == "uuid") return fmt::format("\"\\\"\" {} \"\\\"\"", format);
      if (format == "date-time") return std::string("\"\\\"\" date \"T\" time \"\\\"\"");
      return invalid_argument("unsupported string `format` `{}` at {}; supported: date, time, date-time, uuid",
                              format, where);
    }
    if (!s.contains("minLength") && !s.contains("maxLength")) return std::string("string");
    const int64_t min = s.value("minLength", int64_t{0});
    const int64_t max = s.value("maxLength", int64_t{-1});
    if (min > kMaxBound || (max >= 0 && max < min)) {
      return invalid_argument("`minLength`/`maxLength` at {} must be ordered, minLength at most {}", where, kMaxBound);
    }
    return fmt::format("\"\\\"\" char{} \"\\\"\"", bounds(min, max));
  }

  StatusOr<std::string> object(const json& s, const std::string& where) {
    const json properties = s.value("properties", json::object());
    const json required = s.value("required", json::array());
    std::set<std::string> must;
    for (const json& r : required) must.insert(r.get<std::string>());
    for (const std::string& r : must) {
      if (!properties.contains(r)) return invalid_argument("`required` at {} names `{}`, not a property", where, r);
    }
    if (properties.empty()) {
      const json extra = s.value("additionalProperties", json(true));
      if (extra.is_boolean() && !extra.get<bool>()) return std::string("\"{\" ws \"}\"");
      STRATA_ASSIGN_OR_RETURN(std::string v, expression(extra, where + "/additionalProperties"));
      const std::string pair = fmt::format("string ws \":\" ws {} ws", v);
      return fmt::format("\"{{\" ws ( {} ( \",\" ws {} )* )? \"}}\"", pair, pair);
    }
    // Required properties first, then the optional ones: any order is valid JSON.
    std::vector<std::string> first, optional;
    for (const auto& [name, schema] : properties.items()) {
      STRATA_ASSIGN_OR_RETURN(std::string v, expression(schema, fmt::format("{}/properties/{}", where, name)));
      std::string pair = fmt::format("{} ws \":\" ws {} ws", literal(json(name).dump()), v);
      (must.count(name) ? first : optional).push_back(std::move(pair));
    }
    return define(object_body(first, optional));
  }

  // "{" required ("," required)* ("," optional)? ... "}", or, with none required, the first
  // optional one present leading.
  static std::string object_body(const std::vector<std::string>& required, const std::vector<std::string>& optional) {
    auto tail = [&](size_t from) {
      std::string out;
      for (size_t i = from; i < optional.size(); ++i) out += fmt::format(" ( \",\" ws {} )?", optional[i]);
      return out;
    };
    if (!required.empty()) {
      std::string out = "\"{\" ws " + required[0];
      for (size_t i = 1; i < required.size(); ++i) out += fmt::format(" \",\" ws {}", required[i]);
      return out + tail(0) + " \"}\"";
    }
    std::vector<std::string> leads;
    for (size_t i = 0; i < optional.size(); ++i) leads.push_back(optional[i] + tail(i + 1));
    return fmt::format("\"{{\" ws ( {} )? \"}}\"", fmt::join(leads, " | "));
  }

  StatusOr<std::string> array(const json& s, const std::string& where) {
    const int64_t min = s.value("minItems", int64_t{0});
    const int64_t max = s.value("maxItems", int64_t{-1});
    if (min > kMaxBound || (max >= 0 && max < min)) {
      return invalid_argument("`minItems`/`maxItems` at {} must be ordered, minItems at most {}", where, kMaxBound);
    }
    if (s.contains("prefixItems")) {
      if (s.contains("minItems") || s.contains("maxItems")) {
        return invalid_argument("`prefixItems` at {} is supported without minItems/maxItems", where);
      }
      return tuple(s, where);
    }
    STRATA_ASSIGN_OR_RETURN(std::string item, expression(s.value("items", json(true)), where + "/items"));
    if (max == 0) return std::string("\"[\" ws \"]\"");
    const std::string more = fmt::format("( \",\" ws {} ws ){}", item, bounds(std::max<int64_t>(min, 1) - 1,
                                                                               max < 0 ? -1 : max - 1));
    const std::string items = fmt::format("{} ws {}", item, more);
    return define(min == 0 ? fmt::format("\"[\" ws ( {} )? \"]\"", items) : fmt::format("\"[\" ws {} \"]\"", items));
  }

  StatusOr<std::string> tuple(const json& s, const std::string& where) {
    const json& prefix = s["prefixItems"];
    std::string out = "\"[\" ws";
    for (size_t i = 0; i < prefix.size(); ++i) {
      STRATA_ASSIGN_OR_RETURN(std::string e, expression(prefix[i], fmt::format("{}/prefixItems/{}", where, i)));
      out += fmt::format("{} {} ws", i == 0 ? "" : " \",\" ws", e);
    }
    const json rest = s.value("items", json(true));
    if (!(rest.is_boolean() && !rest.get<bool>())) {
      STRATA_ASSIGN_OR_RETURN(std::string e, expression(rest, where + "/items"));
      out += fmt::format(" ( \",\" ws {} ws )*", e);
    }
    return define(out + " \"]\"");
  }

  StatusOr<std::string> enumeration(const json& values, const std::string& where) {
    if (!values.is_array() || values.empty()) return invalid_argument("`enum` at {} must be a non-empty list", where);
    std::vector<std::string> options;
    for (const json& v : values) options.push_back(literal(v.dump()));
    return fmt::format("( {} )", fmt::join(options, " | "));
  }

  StatusOr<std::string> alternatives(const json& list, const std::string& where) {
    if (!list.is_array() || list.empty()) return invalid_argument("{} must be a non-empty list", where);
    std::vector<std::string> options;
    for (size_t i = 0; i < list.size(); ++i) {
      STRATA_ASSIGN_OR_RETURN(std::string e, expression(list[i], fmt::format("{}/{}", where, i)));
      options.push_back(std::move(e));
    }
    return fmt::format("( {} )", fmt::join(options, " | "));
  }

  // A rule per $ref target, named before it is compiled, so recursive schemas terminate.
  StatusOr<std::string> reference(const json& ref, const std::string& where) {
    if (!ref.is_string()) return invalid_argument("`$ref` at {} must be a string", where);
    const std::string target = ref.get<std::string>();
    if (auto it = ref_rules_.find(target); it != ref_rules_.end()) return it->second;
    json::json_pointer pointer;
    try {
      if (target.rfind("#", 0) != 0) throw std::invalid_argument("not local");
      pointer = json::json_pointer(target.substr(1));
    } catch (const std::exception&) {
      return invalid_argument("`$ref` `{}` at {}: only references into this schema (#/$defs/…) are supported",
                              target, where);
    }
    if (!root_.contains(pointer)) return invalid_argument("`$ref` `{}` at {} points at nothing", target, where);
    const std::string name = fmt::format("ref{}", ref_rules_.size());
    ref_rules_[target] = name;
    STRATA_ASSIGN_OR_RETURN(std::string body, expression(root_.at(pointer), target));
    rules_ += fmt::format("{} ::= {}\n", name, body);
    return name;
  }

  std::string define(const std::string& body) {
    const std::string name = fmt::format("s{}", next_++);
    rules_ += fmt::format("{} ::= {}\n", name, body);
    return name;
  }

  const json& root_;
  std::map<std::string, std::string> ref_rules_;
  std::string rules_;
  int next_ = 0;
};

}  // namespace

StatusOr<std::string> json_schema_to_gbnf(const json& schema) {
  try {
    return SchemaCompiler(schema).compile();
  } catch (const json::exception& e) {  // a keyword's value of the wrong JSON type
    return invalid_argument("the JSON Schema has a keyword with a value of the wrong type: {}", e.what());
  }
}

std::string json_object_gbnf() { return fmt::format("root ::= object\n{}", kJsonRules); }

}  // namespace strata::grammar
