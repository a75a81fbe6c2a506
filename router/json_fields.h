// Reading typed fields of a request's JSON object into a request struct, each error a
// ready-to-send 400 that names the field and shows what was given ("`top_p` must be a
// number. Given: \"x\""). A field that is absent or null is "not given" and leaves the
// output untouched. Shared by every endpoint that parses a body.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "router/api_types.h"

namespace strata::router {

using MaybeError = std::optional<ApiError>;

// Returns from the enclosing function with the error when `expr` yields one.
#define STRATA_RETURN_IF_API_ERROR(expr)         \
  do {                                           \
    if (MaybeError strata_api_error_ = (expr)) { \
      return std::move(*strata_api_error_);      \
    }                                            \
  } while (0)

// A 400 invalid_request_error about `param`.
ApiError bad(std::string param, std::string message);
// "`name` must be <expected>. Given: <v>".
ApiError type_error(const std::string& name, std::string_view expected, const nlohmann::json& v);

// The value of `key`, or nullptr when it is absent or null (null means "not given").
const nlohmann::json* field(const nlohmann::json& obj, const char* key);

// An integer in [lo, hi]; integral floats are accepted (2.0), fractional ones are not.
// `hint` follows the range in the message (", the model's context").
MaybeError to_int(const nlohmann::json& v, const std::string& name, int64_t lo, int64_t hi,
                  int64_t* out, std::string_view hint = "");
MaybeError get_int(const nlohmann::json& obj, const char* key, int64_t lo, int64_t hi,
                   std::optional<int64_t>* out, std::string_view hint = "");
// A number that fits a float (the SamplingParams type); the range is checked by the caller
// or by SamplingParams::validate. `given` is set when the field was there.
MaybeError get_float(const nlohmann::json& obj, const char* key, float* out, bool* given = nullptr);
MaybeError get_bool(const nlohmann::json& obj, const char* key, bool* out);
MaybeError get_string(const nlohmann::json& obj, const char* key, std::string* out);

}  // namespace strata::router
