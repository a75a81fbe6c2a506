#include "router/json_fields.h"

#include <fmt/format.h>

#include <cfloat>
#include <cmath>

#include "common/utf8.h"
#include "router/json_body.h"

namespace strata::router {

using nlohmann::json;

ApiError bad(std::string param, std::string message) {
  return ApiError{.http_status = 400,
                  .message = utf8::to_valid_lossy(message),
                  .type = "invalid_request_error",
                  .param = std::move(param),
                  .code = ""};
}

const json* field(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

ApiError type_error(const std::string& name, std::string_view expected, const json& v) {
  return bad(name, fmt::format("`{}` must be {}. Given: {}", name, expected, describe_json(v)));
}

MaybeError to_int(const json& v, const std::string& name, int64_t lo, int64_t hi, int64_t* out,
                  std::string_view hint) {
  auto range_error = [&] {
    return bad(name, fmt::format("`{}` must be in [{}, {}]{}. Given: {}", name, lo, hi, hint,
                                 describe_json(v)));
  };
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (hi < 0 || u > static_cast<uint64_t>(hi) || static_cast<int64_t>(u) < lo) {
      return range_error();
    }
    *out = static_cast<int64_t>(u);
    return std::nullopt;
  }
  if (v.is_number_integer()) {
    const auto x = v.get<int64_t>();
    if (x < lo || x > hi) return range_error();
    *out = x;
    return std::nullopt;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (d != std::floor(d)) return type_error(name, "an integer", v);
    // ±2^63 and beyond do not fit an int64 (the float compare below would round).
    if (!(std::fabs(d) < 9.2e18) || d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
      return range_error();
    }
    *out = static_cast<int64_t>(d);
    return std::nullopt;
  }
  return type_error(name, "an integer", v);
}

MaybeError get_int(const json& obj, const char* key, int64_t lo, int64_t hi,
                   std::optional<int64_t>* out, std::string_view hint) {
  const json* v = field(obj, key);
  if (!v) return std::nullopt;
  int64_t x = 0;
  STRATA_RETURN_IF_API_ERROR(to_int(*v, key, lo, hi, &x, hint));
  *out = x;
  return std::nullopt;
}

MaybeError get_float(const json& obj, const char* key, float* out, bool* given) {
  const json* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) return type_error(key, "a number", *v);
  const double d = v->get<double>();
  if (!(std::fabs(d) <= FLT_MAX)) {
    return bad(key, fmt::format("`{}` is out of range. Given: {}", key, describe_json(*v)));
  }
  *out = static_cast<float>(d);
  if (given) *given = true;
  return std::nullopt;
}

MaybeError get_bool(const json& obj, const char* key, bool* out) {
  const json* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) return type_error(key, "a boolean (true or false)", *v);
  *out = v->get<bool>();
  return std::nullopt;
}

MaybeError get_string(const json& obj, const char* key, std::string* out) {
  const json* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) return type_error(key, "a string", *v);
  *out = v->get<std::string>();
  return std::nullopt;
}

}  // namespace strata::router
