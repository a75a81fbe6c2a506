// GgufFile's typed metadata getters: every error names the file, the key, the type wanted
// and the type the file holds.
#include <fmt/format.h>

#include "common/gguf/gguf_file.h"

namespace strata::gguf {

namespace {

bool is_integer(ValueType t) {
  switch (t) {
    case ValueType::kUint8: case ValueType::kInt8: case ValueType::kUint16: case ValueType::kInt16:
    case ValueType::kUint32: case ValueType::kInt32: case ValueType::kUint64: case ValueType::kInt64:
      return true;
    default: return false;
  }
}

bool is_real(ValueType t) { return t == ValueType::kFloat32 || t == ValueType::kFloat64; }

std::string describe(const Value& v) {
  if (v.type != ValueType::kArray) return std::string(value_type_name(v.type));
  return fmt::format("array of {}", value_type_name(v.array_type));
}

}  // namespace

#define STRATA_GGUF_FIND(value, key)                                                 \
  const Value* value = find(key);                                                    \
  if (value == nullptr) return not_found("{}: metadata `{}` is missing", path_, key)

#define STRATA_GGUF_WRONG(value, key, wanted) \
  invalid_argument("{}: metadata `{}` is {}, not {}", path_, key, describe(*value), wanted)

StatusOr<int64_t> GgufFile::get_int(std::string_view key) const {
  STRATA_GGUF_FIND(v, key);
  if (!is_integer(v->type)) return STRATA_GGUF_WRONG(v, key, "an integer");
  if (v->type == ValueType::kUint64 && v->unsigned_integer > uint64_t{INT64_MAX}) {
    return invalid_argument("{}: metadata `{}` is {}, too large", path_, key, v->unsigned_integer);
  }
  return v->integer;
}

StatusOr<double> GgufFile::get_float(std::string_view key) const {
  STRATA_GGUF_FIND(v, key);
  if (!is_real(v->type) && !is_integer(v->type)) return STRATA_GGUF_WRONG(v, key, "a number");
  return v->real;
}

StatusOr<bool> GgufFile::get_bool(std::string_view key) const {
  STRATA_GGUF_FIND(v, key);
  if (v->type != ValueType::kBool) return STRATA_GGUF_WRONG(v, key, "a bool");
  return v->boolean;
}

StatusOr<std::string> GgufFile::get_string(std::string_view key) const {
  STRATA_GGUF_FIND(v, key);
  if (v->type != ValueType::kString) return STRATA_GGUF_WRONG(v, key, "a string");
  return v->text;
}

StatusOr<std::vector<std::string>> GgufFile::get_string_array(std::string_view key) const {
  STRATA_GGUF_FIND(v, key);
  if (v->type != ValueType::kArray || v->array_type != ValueType::kString) {
    return STRATA_GGUF_WRONG(v, key, "an array of strings");
  }
  return v->strings;
}

StatusOr<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
  STRATA_GGUF_FIND(v, key);
  if (v->type != ValueType::kArray ||
      !(is_integer(v->array_type) || v->array_type == ValueType::kBool)) {
    return STRATA_GGUF_WRONG(v, key, "an array of integers");
  }
  return v->integers;
}

StatusOr<std::vector<double>> GgufFile::get_float_array(std::string_view key) const {
  STRATA_GGUF_FIND(v, key);
  if (v->type != ValueType::kArray) return STRATA_GGUF_WRONG(v, key, "an array of numbers");
  if (is_real(v->array_type)) return v->reals;
  if (!is_integer(v->array_type)) return STRATA_GGUF_WRONG(v, key, "an array of numbers");
  return std::vector<double>(v->integers.begin(), v->integers.end());
}

#undef STRATA_GGUF_FIND
#undef STRATA_GGUF_WRONG

StatusOr<int64_t> GgufFile::get_int_or(std::string_view key, int64_t fallback) const {
  return contains(key) ? get_int(key) : StatusOr<int64_t>(fallback);
}

StatusOr<double> GgufFile::get_float_or(std::string_view key, double fallback) const {
  return contains(key) ? get_float(key) : StatusOr<double>(fallback);
}

StatusOr<bool> GgufFile::get_bool_or(std::string_view key, bool fallback) const {
  return contains(key) ? get_bool(key) : StatusOr<bool>(fallback);
}

StatusOr<std::string> GgufFile::get_string_or(std::string_view key, std::string fallback) const {
  return contains(key) ? get_string(key) : StatusOr<std::string>(std::move(fallback));
}

}  // namespace strata::gguf
