// GGUF parser design note: one forward pass over the bytes through a Cursor that checks
// every read against what remains, so a length or count taken from the file is compared
// with the bytes left before anything is allocated or read (a "huge string length" fails
// at once, it does not reserve gigabytes). Counts are also bounded by the smallest size
// one item can take, so a tensor count of 2^60 fails before the loop starts.
#include "common/gguf/gguf_file.h"

#include <algorithm>
#include <filesystem>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

namespace strata::gguf {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kMaxDims = 4;          // GGML_MAX_DIMS

}  // namespace

std::string_view value_type_name(ValueType type) {
  switch (type) {
    case ValueType::kUint8: return "uint8";
    case ValueType::kInt8: return "int8";
    case ValueType::kUint16: return "uint16";
    case ValueType::kInt16: return "int16";
    case ValueType::kUint32: return "uint32";
    case ValueType::kInt32: return "int32";
    case ValueType::kFloat32: return "float32";
    case ValueType::kBool: return "bool";
    case ValueType::kString: return "string";
    case ValueType::kArray: return "array";
    case ValueType::kUint64: return "uint64";
    case ValueType::kInt64: return "int64";
    case ValueType::kFloat64: return "float64";
  }
  return "unknown";
}

std::string ggml_type_name(GgmlType type) {
  switch (type) {
    case GgmlType::kF32: return "F32";
    case GgmlType::kF16: return "F16";
    case GgmlType::kQ4_0: return "Q4_0";
    case GgmlType::kQ4_1: return "Q4_1";
    case GgmlType::kQ5_0: return "Q5_0";
    case GgmlType::kQ5_1: return "Q5_1";
    case GgmlType::kQ8_0: return "Q8_0";
    case GgmlType::kQ8_1: return "Q8_1";
    case GgmlType::kQ2_K: return "Q2_K";
    case GgmlType::kQ3_K: return "Q3_K";
    case GgmlType::kQ4_K: return "Q4_K";
    case GgmlType::kQ5_K: return "Q5_K";
    case GgmlType::kQ6_K: return "Q6_K";
    case GgmlType::kQ8_K: return "Q8_K";
    case GgmlType::kI8: return "I8";
    case GgmlType::kI16: return "I16";
    case GgmlType::kI32: return "I32";
    case GgmlType::kI64: return "I64";
    case GgmlType::kF64: return "F64";
    case GgmlType::kBF16: return "BF16";
  }
  return fmt::format("type {}", static_cast<uint32_t>(type));
}

std::optional<BlockShape> ggml_block_shape(GgmlType type) {
  switch (type) {
    case GgmlType::kF32: return BlockShape{1, 4};
    case GgmlType::kF16: return BlockShape{1, 2};
    case GgmlType::kBF16: return BlockShape{1, 2};
    case GgmlType::kF64: return BlockShape{1, 8};
    case GgmlType::kI8: return BlockShape{1, 1};
    case GgmlType::kI16: return BlockShape{1, 2};
    case GgmlType::kI32: return BlockShape{1, 4};
    case GgmlType::kI64: return BlockShape{1, 8};
    case GgmlType::kQ4_0: return BlockShape{32, 18};
    case GgmlType::kQ4_1: return BlockShape{32, 20};
    case GgmlType::kQ5_0: return BlockShape{32, 22};
    case GgmlType::kQ5_1: return BlockShape{32, 24};
    case GgmlType::kQ8_0: return BlockShape{32, 34};
    case GgmlType::kQ8_1: return BlockShape{32, 36};
    case GgmlType::kQ2_K: return BlockShape{256, 84};
    case GgmlType::kQ3_K: return BlockShape{256, 110};
    case GgmlType::kQ4_K: return BlockShape{256, 144};
    case GgmlType::kQ5_K: return BlockShape{256, 176};
    case GgmlType::kQ6_K: return BlockShape{256, 210};
    case GgmlType::kQ8_K: return BlockShape{256, 292};
  }
  return std::nullopt;
}

size_t Value::array_size() const {
  if (type != ValueType::kArray) return 0;
  if (array_type == ValueType::kString) return strings.size();
  if (array_type == ValueType::kFloat32 || array_type == ValueType::kFloat64) return reals.size();
  return integers.size();
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t e : extents) n *= e;
  return n;
}

std::vector<int64_t> TensorInfo::shape() const { return {extents.rbegin(), extents.rend()}; }

// Reads little-endian fields from [pos, end); every read checks what remains first.
class Cursor {
 public:
  Cursor(const uint8_t* begin, size_t size) : begin_(begin), size_(size) {}
  size_t position() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  template <typename T>
  bool read(T& out) {
    if (remaining() < sizeof(T)) return false;
    std::memcpy(&out, begin_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  // A u64 length, then that many bytes; false when the length exceeds what remains.
  bool read_string(std::string& out, uint64_t& length) {
    if (!read(length) || length > remaining()) return false;
    out.assign(reinterpret_cast<const char*>(begin_ + pos_), static_cast<size_t>(length));
    pos_ += static_cast<size_t>(length);
    return true;
  }

 private:
  const uint8_t* begin_;
  size_t size_;
  size_t pos_ = 0;
};

// The one pass over a file's bytes (see the design note).
class GgufParser {
 public:
  GgufParser(GgufFile& file, std::span<const uint8_t> bytes)
      : file_(file), bytes_(bytes), cur_(bytes.data(), bytes.size()) {}

  Status parse() {
    uint64_t tensor_count = 0, kv_count = 0;
    STRATA_RETURN_IF_ERROR(parse_header(tensor_count, kv_count));
    for (uint64_t i = 0; i < kv_count; ++i) STRATA_RETURN_IF_ERROR(parse_metadata_pair(i));
    STRATA_RETURN_IF_ERROR(read_alignment());
    file_.tensors_.reserve(static_cast<size_t>(tensor_count));
    for (uint64_t i = 0; i < tensor_count; ++i) STRATA_RETURN_IF_ERROR(parse_tensor_info(i));
    return place_tensors();
  }

 private:
  template <typename... Args>
  Status corrupt(fmt::format_string<Args...> format, Args&&... args) const {
    return invalid_argument("{}: not a valid GGUF file: {} (at byte {} of {})", file_.path_,
                            fmt::format(format, std::forward<Args>(args)...), cur_.position(),
                            bytes_.size());
  }

  Status parse_header(uint64_t& tensor_count, uint64_t& kv_count) {
    uint32_t magic = 0;
    if (!cur_.read(magic)) return corrupt("the file is shorter than the 4-byte magic");
    if (magic != kMagic) return corrupt("the magic is not \"GGUF\"");
    if (!cur_.read(file_.version_)) return corrupt("the header ends before the version");
    if (file_.version_ != 2 && file_.version_ != 3) {
      return corrupt("version {} is not supported (strata reads GGUF versions 2 and 3; "
                     "re-convert the model with a current llama.cpp)",
                     file_.version_);
    }
    if (!cur_.read(tensor_count)) return corrupt("the header ends before the tensor count");
    if (!cur_.read(kv_count)) return corrupt("the header ends before the metadata count");
    // The smallest metadata pair is 8 (key length) + 4 (type) + 1 bytes; the smallest tensor
    // info 8 + 4 + 8 + 4 + 8.
    if (kv_count > cur_.remaining() / 13) {
      return corrupt("the metadata count {} cannot fit in the file", kv_count);
    }
    if (tensor_count > cur_.remaining() / 32) {
      return corrupt("the tensor count {} cannot fit in the file", tensor_count);
    }
    return ok_status();
  }

  Status read_string(std::string& out, std::string_view what) {
    uint64_t length = 0;
    if (!cur_.read_string(out, length)) {
      return corrupt("{}: string length {} runs past the end of the file", what, length);
    }
    return ok_status();
  }

  Status parse_metadata_pair(uint64_t index) {
    std::string key;
    STRATA_RETURN_IF_ERROR(read_string(key, fmt::format("metadata key #{}", index)));
    uint32_t type = 0;
    if (!cur_.read(type)) return corrupt("metadata `{}`: the file ends before its type", key);
    Value value;
    STRATA_RETURN_IF_ERROR(parse_value(key, static_cast<ValueType>(type), value));
    if (!file_.metadata_.emplace(key, std::move(value)).second) {
      return corrupt("metadata key `{}` appears twice", key);
    }
    return ok_status();
  }

  Status parse_value(const std::string& key, ValueType type, Value& v) {
    v.type = type;
    if (type == ValueType::kArray) return parse_array(key, v);
    if (type == ValueType::kString) return read_string(v.text, fmt::format("metadata `{}`", key));
    if (!read_scalar(type, v)) {
      if (static_cast<uint32_t>(type) > static_cast<uint32_t>(ValueType::kFloat64)) {
        return corrupt("metadata `{}` has unknown value type {}", key, static_cast<uint32_t>(type));
      }
      return corrupt("metadata `{}`: the file ends inside its {} value", key, value_type_name(type));
    }
    return ok_status();
  }

  // Scalar types only; false at the end of the file or for a type that is not a scalar.
  bool read_scalar(ValueType type, Value& v) {
    auto as_int = [&](auto raw) {
      if (!cur_.read(raw)) return false;
      v.integer = static_cast<int64_t>(raw);
      v.unsigned_integer = static_cast<uint64_t>(raw);
      v.real = static_cast<double>(raw);
      return true;
    };
    switch (type) {
      case ValueType::kUint8: return as_int(uint8_t{});
      case ValueType::kInt8: return as_int(int8_t{});
      case ValueType::kUint16: return as_int(uint16_t{});
      case ValueType::kInt16: return as_int(int16_t{});
      case ValueType::kUint32: return as_int(uint32_t{});
      case ValueType::kInt32: return as_int(int32_t{});
      case ValueType::kUint64: return as_int(uint64_t{});
      case ValueType::kInt64: return as_int(int64_t{});
      case ValueType::kBool: {
        uint8_t b = 0;
        if (!cur_.read(b)) return false;
        v.boolean = b != 0;
        v.integer = b != 0;
        return true;
      }
      case ValueType::kFloat32: {
        float f = 0;
        if (!cur_.read(f)) return false;
        v.real = f;
        return true;
      }
      case ValueType::kFloat64: return cur_.read(v.real);
      default: return false;
    }
  }

  Status parse_array(const std::string& key, Value& v) {
    uint32_t element = 0;
    uint64_t count = 0;
    if (!cur_.read(element) || !cur_.read(count)) {
      return corrupt("metadata `{}`: the file ends inside the array header", key);
    }
    v.array_type = static_cast<ValueType>(element);
    if (v.array_type == ValueType::kArray) {
      return corrupt("metadata `{}` is an array of arrays, which no llama-family model uses", key);
    }
    if (count > cur_.remaining()) {  // every element takes at least one byte
      return corrupt("metadata `{}`: array length {} cannot fit in the file", key, count);
    }
    for (uint64_t i = 0; i < count; ++i) {
      Value item;
      STRATA_RETURN_IF_ERROR(parse_value(fmt::format("{}[{}]", key, i), v.array_type, item));
      if (v.array_type == ValueType::kString) {
        v.strings.push_back(std::move(item.text));
      } else if (v.array_type == ValueType::kFloat32 || v.array_type == ValueType::kFloat64) {
        v.reals.push_back(item.real);
      } else {
        v.integers.push_back(item.integer);
      }
    }
    return ok_status();
  }

  Status read_alignment() {
    const Value* a = file_.find("general.alignment");
    if (a == nullptr) return ok_status();
    if (a->type != ValueType::kUint32 && a->type != ValueType::kUint64 &&
        a->type != ValueType::kInt32) {
      return corrupt("`general.alignment` is a {}, not a uint32", value_type_name(a->type));
    }
    const int64_t alignment = a->integer;
    if (alignment <= 0 || alignment > (1 << 20) || (alignment & (alignment - 1)) != 0) {
      return corrupt("`general.alignment` {} is not a power of two up to 1 MiB", alignment);
    }
    file_.alignment_ = static_cast<uint64_t>(alignment);
    return ok_status();
  }

  Status parse_tensor_info(uint64_t index) {
    TensorInfo t;
    STRATA_RETURN_IF_ERROR(read_string(t.name, fmt::format("tensor #{} name", index)));
    uint32_t dims = 0;
    if (!cur_.read(dims)) return corrupt("tensor `{}`: the file ends before its dimensions", t.name);
    if (dims == 0 || dims > kMaxDims) {
      return corrupt("tensor `{}` has {} dimensions (1 to {} allowed)", t.name, dims, kMaxDims);
    }
    for (uint32_t d = 0; d < dims; ++d) {
      uint64_t extent = 0;
      if (!cur_.read(extent)) return corrupt("tensor `{}`: the file ends inside its shape", t.name);
      if (extent == 0 || extent > (uint64_t{1} << 40)) {
        return corrupt("tensor `{}` dimension {} is {}", t.name, d, extent);
      }
      t.extents.push_back(static_cast<int64_t>(extent));
    }
    uint32_t type = 0;
    if (!cur_.read(type) || !cur_.read(t.offset)) {
      return corrupt("tensor `{}`: the file ends before its type and offset", t.name);
    }
    t.type = static_cast<GgmlType>(type);
    STRATA_RETURN_IF_ERROR(size_tensor(t));
    if (file_.tensor_index_.count(t.name) != 0) return corrupt("tensor `{}` appears twice", t.name);
    file_.tensor_index_.emplace(t.name, file_.tensors_.size());
    file_.tensors_.push_back(std::move(t));
    return ok_status();
  }

  Status size_tensor(TensorInfo& t) {
    const std::optional<BlockShape> block = ggml_block_shape(t.type);
    if (!block) {
      return corrupt("tensor `{}` has ggml type {}, which strata does not know", t.name,
                     static_cast<uint32_t>(t.type));
    }
    if (t.extents[0] % block->elements != 0) {
      return corrupt("tensor `{}`: its row of {} elements is not a whole number of {} blocks of {}",
                     t.name, t.extents[0], ggml_type_name(t.type), block->elements);
    }
    // Each extent is below 2^40 and the product is checked against the file size step by
    // step, so nothing overflows.
    uint64_t bytes = static_cast<uint64_t>(t.extents[0] / block->elements) * block->bytes;
    for (size_t d = 1; d < t.extents.size(); ++d) {
      if (bytes > bytes_.size()) break;
      bytes *= static_cast<uint64_t>(t.extents[d]);
    }
    if (bytes > bytes_.size()) {
      return corrupt("tensor `{}` needs {} bytes, more than the whole file", t.name, bytes);
    }
    t.nbytes = bytes;
    return ok_status();
  }

  // Data section: aligned start, every tensor aligned, inside the file, no overlaps.
  Status place_tensors() {
    const uint64_t a = file_.alignment_;
    const uint64_t data_start = (cur_.position() + a - 1) / a * a;
    if (data_start > bytes_.size() && !file_.tensors_.empty()) {
      return corrupt("the data section would start at byte {}, past the end", data_start);
    }
    const uint64_t data_size = bytes_.size() > data_start ? bytes_.size() - data_start : 0;
    std::vector<const TensorInfo*> by_offset;
    for (TensorInfo& t : file_.tensors_) {
      if (t.offset % a != 0) {
        return corrupt("tensor `{}` offset {} is not a multiple of the alignment {}", t.name, t.offset, a);
      }
      if (t.offset > data_size || t.nbytes > data_size - t.offset) {
        return corrupt("tensor `{}` ({} bytes at data offset {}) runs past the end of the file",
                       t.name, t.nbytes, t.offset);
      }
      t.data = bytes_.data() + data_start + t.offset;
      by_offset.push_back(&t);
    }
    std::sort(by_offset.begin(), by_offset.end(),
              [](const TensorInfo* x, const TensorInfo* y) { return x->offset < y->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
      const TensorInfo& prev = *by_offset[i - 1];
      if (prev.offset + prev.nbytes > by_offset[i]->offset) {
        return corrupt("tensors `{}` and `{}` overlap", prev.name, by_offset[i]->name);
      }
    }
    return ok_status();
  }

  GgufFile& file_;
  std::span<const uint8_t> bytes_;
  Cursor cur_;
};

StatusOr<GgufFile> GgufFile::open(const std::string& path) {
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> mapped, MappedFile::open(path));
  const std::span<const uint8_t> bytes(mapped->data(), mapped->size());
  std::shared_ptr<const MappedFile> mapping = mapped;
  STRATA_ASSIGN_OR_RETURN(GgufFile file, parse(std::move(mapped), bytes, path));
  file.mapping_ = std::move(mapping);
  return file;
}

void GgufFile::release(const TensorInfo& tensor) const {
  if (mapping_) mapping_->release(tensor.data, tensor.nbytes);
}

StatusOr<GgufFile> GgufFile::parse(std::shared_ptr<const void> owner, std::span<const uint8_t> bytes,
                                   std::string name) {
  GgufFile file;
  file.owner_ = std::move(owner);
  file.path_ = std::move(name);
  GgufParser parser(file, bytes);
  STRATA_RETURN_IF_ERROR(parser.parse());
  return file;
}

const Value* GgufFile::find(std::string_view key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

const TensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

bool is_gguf_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0;
}

std::string only_gguf_file_in(const std::string& dir) {
  std::error_code ec;
  std::string found;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ".gguf") continue;
    if (!found.empty()) return "";
    found = entry.path().string();
  }
  return found;
}

}  // namespace strata::gguf
