// GgufFile: a GGUF file (llama.cpp's model format, versions 2 and 3) opened read-only:
// its metadata and tensor table parsed and checked in one pass, its tensor data mmap'd.
//
// Layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 metadata count; each
// metadata pair is a string key, a u32 value type and the value (strings are a u64 length
// and bytes; arrays a u32 element type, a u64 count and the elements); each tensor info is
// a string name, u32 dims, u64 extents (innermost first), u32 ggml type and u64 offset
// from the start of the data section, which begins at the next multiple of
// `general.alignment` (default 32) after the tensor table.
//
// Every count, length, offset and size is checked against the bytes that remain before it
// is used, so a truncated or corrupt file is an error naming the file, the key or tensor
// and what was wrong, and no byte outside the file is ever read. After open() succeeds
// every TensorInfo's data points at exactly nbytes bytes inside the mapping, tensors do
// not overlap, and every offset is aligned.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/mapped_file.h"
#include "common/status.h"

namespace strata::gguf {

enum class ValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};
std::string_view value_type_name(ValueType type);

// ggml's tensor types (ggml.h's enum ggml_type); the ones strata reads are named, any other
// value is carried as is so the error can quote it.
enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ8_1 = 9,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kQ8_K = 15, kI8 = 24,
  kI16 = 25, kI32 = 26, kI64 = 27, kF64 = 28, kBF16 = 30,
};
// "F32", "Q8_0", ...; "type N" for a value ggml has no name for here.
std::string ggml_type_name(GgmlType type);
// Elements per block and bytes per block; nullopt for a type whose size is not known here.
struct BlockShape {
  int64_t elements = 1;
  int64_t bytes = 0;
};
std::optional<BlockShape> ggml_block_shape(GgmlType type);

// One metadata value. Scalars: the integer kinds in `integer` (uint64 above INT64_MAX is
// kept in `unsigned_integer` only), floats in `real`, bools in `boolean`, strings in `text`.
// Arrays: `array_type` and one of strings / integers / reals filled (bool arrays as
// integers 0/1); nested arrays are refused at open().
struct Value {
  ValueType type = ValueType::kUint8;
  int64_t integer = 0;
  uint64_t unsigned_integer = 0;
  double real = 0.0;
  bool boolean = false;
  std::string text;
  ValueType array_type = ValueType::kUint8;
  std::vector<std::string> strings;
  std::vector<int64_t> integers;
  std::vector<double> reals;
  size_t array_size() const;
};

struct TensorInfo {
  std::string name;
  std::vector<int64_t> extents;  // ggml order: extents[0] is the innermost (contiguous) dim
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;           // from the start of the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;  // inside the file's bytes; valid while the GgufFile lives
  int64_t numel() const;
  // The row-major shape strata uses: the extents reversed ([rows, cols] for a matrix).
  std::vector<int64_t> shape() const;
};

class GgufFile {
 public:
  // Maps and parses `path`.
  static StatusOr<GgufFile> open(const std::string& path);
  // Parses bytes already in memory (`name` stands for the file in messages); `owner` keeps
  // them alive. The fuzz target and the tests use it.
  static StatusOr<GgufFile> parse(std::shared_ptr<const void> owner, std::span<const uint8_t> bytes,
                                  std::string name);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }

  const Value* find(std::string_view key) const;
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  const std::map<std::string, Value, std::less<>>& metadata() const { return metadata_; }

  // Typed getters. NotFound names the key when it is missing; InvalidArgument names the
  // key, the type wanted and the type found. Integers accept every integer kind (and a
  // uint64 that fits int64); floats accept float32/float64 and integers.
  StatusOr<int64_t> get_int(std::string_view key) const;
  StatusOr<double> get_float(std::string_view key) const;
  StatusOr<bool> get_bool(std::string_view key) const;
  StatusOr<std::string> get_string(std::string_view key) const;
  StatusOr<std::vector<std::string>> get_string_array(std::string_view key) const;
  StatusOr<std::vector<int64_t>> get_int_array(std::string_view key) const;
  StatusOr<std::vector<double>> get_float_array(std::string_view key) const;
  // The same, with `fallback` when the key is absent (a present key of the wrong type is
  // still an error).
  StatusOr<int64_t> get_int_or(std::string_view key, int64_t fallback) const;
  StatusOr<double> get_float_or(std::string_view key, double fallback) const;
  StatusOr<bool> get_bool_or(std::string_view key, bool fallback) const;
  StatusOr<std::string> get_string_or(std::string_view key, std::string fallback) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  // Drops the tensor's pages from memory once its data has been copied out (see
  // MappedFile::release); a no-op for bytes given to parse().
  void release(const TensorInfo& tensor) const;

 private:
  GgufFile() = default;
  friend class GgufParser;
  std::shared_ptr<const void> owner_;
  std::shared_ptr<const MappedFile> mapping_;  // set by open()
  std::string path_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::map<std::string, Value, std::less<>> metadata_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Whether `path` names a GGUF file: its first four bytes are "GGUF" (false when it cannot
// be read).
bool is_gguf_file(const std::string& path);

// The only *.gguf file in directory `dir`, or "" when there is none or more than one (the
// model a directory of one GGUF holds; two are ambiguous).
std::string only_gguf_file_in(const std::string& dir);

}  // namespace strata::gguf
