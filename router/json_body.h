// Parsing an HTTP request body into JSON without exceptions, and naming the field at fault.
//
// Design note: nlohmann's DOM parser throws and reports only a byte position. Request
// validation wants more: a number that overflows a double (1e309) or a string with invalid
// UTF-8 should be answered with a 400 that names the field ("`temperature`",
// "`messages[1].content`"). So the body goes through nlohmann's SAX parser with a handler
// that builds the DOM itself and tracks the path of the value being read. The same handler
// bounds the nesting depth, so hostile bodies ("[[[[...") cannot exhaust memory or stack.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>

#include "router/api_types.h"

namespace strata::router {

inline constexpr int kMaxJsonDepth = 64;  // objects/arrays nested deeper ⇒ 400

// Parses `body` (the whole request body). Errors are ready-to-send 400s:
//   - syntax errors: "Request body is not valid JSON: parse error at line 1, column 9: ..."
//     (param empty; the message carries line, column and byte offset);
//   - invalid UTF-8 inside a string: "`prompt` is not valid UTF-8 (byte 0xff at offset 12)",
//     param "prompt";
//   - numbers beyond a double: "`temperature` is too large a number. Given: 1e309";
//   - nesting deeper than max_depth.
// Duplicate keys keep the last value (as nlohmann and Python's json do).
std::variant<nlohmann::json, ApiError> parse_json_body(std::string_view body,
                                                       int max_depth = kMaxJsonDepth);

// A short, printable rendering of a JSON value for "Given: ..." in messages: compact JSON,
// cut to about 80 characters with "..." appended when longer.
std::string describe_json(const nlohmann::json& value);

}  // namespace strata::router
