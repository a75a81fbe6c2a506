// Safetensors reader design note. A checkpoint is opened in one pass: map every file, parse
// and validate every header completely (dtype, shape, offsets, sizes, overlaps), then build
// a name → view table. After open() succeeds every view points inside a live mapping with
// exactly shape × dtype-size bytes, so get() cannot fail except for an unknown name. No
// byte outside a mapping is ever read: the header length is checked against the file size
// before the JSON is parsed, and offsets are checked against the data size before a
// pointer is formed.
#include "worker/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

namespace strata {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;  // as the reference reader
constexpr const char* kIndexFileName = "model.safetensors.index.json";
constexpr const char* kSingleFileName = "model.safetensors";
constexpr const char* kSupportedDtypes = "F32, BF16, F16, I32, I8, U8";

std::optional<DType> parse_safetensors_dtype(const std::string& name) {
  if (name == "F32") return DType::kF32;
  if (name == "BF16") return DType::kBF16;
  if (name == "F16") return DType::kF16;
  if (name == "I32") return DType::kI32;
  if (name == "I8") return DType::kI8;
  if (name == "U8") return DType::kU8;
  return std::nullopt;
}

// One tensor's header entry once validated, before it is registered.
struct ParsedTensor {
  SafetensorView view;
  uint64_t begin = 0;  // offsets within the data section
  uint64_t end = 0;
};

// The shape's dimensions and its byte size in `dtype`, checked for overflow.
Status parse_shape(const std::string& file, const std::string& name, const json& shape_json,
                   DType dtype, std::vector<int64_t>& shape, uint64_t& nbytes) {
  uint64_t numel = 1;
  bool overflow = false;
  for (const json& dim : shape_json) {
    if (!dim.is_number_unsigned() || dim.get<uint64_t>() > uint64_t{INT64_MAX}) {
      return data_loss("{}: tensor '{}' has shape {}; dimensions must be non-negative integers",
                       file, name, shape_json.dump());
    }
    const uint64_t d = dim.get<uint64_t>();
    shape.push_back(static_cast<int64_t>(d));
    overflow |= __builtin_mul_overflow(numel, d, &numel);
  }
  overflow |= __builtin_mul_overflow(numel, dtype_size(dtype), &nbytes);
  if (overflow) {
    return data_loss("{}: tensor '{}' has shape {}, whose byte size overflows 64 bits", file,
                     name, shape_json.dump());
  }
  return ok_status();
}

// `data_offsets` [begin, end]: inside the data section, and exactly nbytes long.
Status parse_offsets(const std::string& file, const std::string& name, const json& entry,
                     uint64_t data_size, uint64_t nbytes, ParsedTensor& out) {
  auto offsets_it = entry.find("data_offsets");
  if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
      !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned()) {
    return data_loss(
        "{}: tensor '{}' needs `data_offsets` [begin, end] of two non-negative integers; the "
        "file is corrupt",
        file, name);
  }
  const uint64_t begin = (*offsets_it)[0].get<uint64_t>();
  const uint64_t end = (*offsets_it)[1].get<uint64_t>();
  if (begin > end || end > data_size) {
    return data_loss(
        "{}: tensor '{}' has data_offsets [{}, {}] outside the data section of {} bytes; the "
        "file is truncated or corrupt",
        file, name, begin, end, data_size);
  }
  if (end - begin != nbytes) {
    return data_loss(
        "{}: tensor '{}' has {} bytes at data_offsets [{}, {}], but shape {} of {} needs {} "
        "bytes; the file is corrupt",
        file, name, end - begin, begin, end, entry["shape"].dump(),
        entry["dtype"].get<std::string>(), nbytes);
  }
  out.begin = begin;
  out.end = end;
  return ok_status();
}

Status check_header_entry(const std::string& file, const std::string& name, const json& entry,
                          uint64_t data_size, const uint8_t* data, ParsedTensor& out) {
  if (!entry.is_object()) {
    return data_loss("{}: tensor '{}' header entry is not a JSON object; the file is corrupt",
                     file, name);
  }
  auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end() || !dtype_it->is_string()) {
    return data_loss("{}: tensor '{}' has no string `dtype`; the file is corrupt", file, name);
  }
  const std::string dtype_str = dtype_it->get<std::string>();
  const std::optional<DType> dtype = parse_safetensors_dtype(dtype_str);
  if (!dtype) {
    return unimplemented(
        "{}: tensor '{}' has dtype '{}', which strata cannot load (supported: {}); convert the "
        "checkpoint to one of those",
        file, name, dtype_str, kSupportedDtypes);
  }
  auto shape_it = entry.find("shape");
  if (shape_it == entry.end() || !shape_it->is_array()) {
    return data_loss("{}: tensor '{}' has no `shape` array; the file is corrupt", file, name);
  }
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;
  STRATA_RETURN_IF_ERROR(parse_shape(file, name, *shape_it, *dtype, shape, nbytes));
  STRATA_RETURN_IF_ERROR(parse_offsets(file, name, entry, data_size, nbytes, out));
  out.view = SafetensorView{.name = name,
                            .file = file,
                            .dtype = *dtype,
                            .shape = std::move(shape),
                            .data = data + out.begin,
                            .nbytes = static_cast<size_t>(nbytes)};
  return ok_status();
}

// The JSON header of a mapped file and where its data section starts.
Status read_header(const MappedFile& mapped, json& root, uint64_t& header_len) {
  const std::string& file = mapped.path();
  const uint64_t size = mapped.size();
  if (size < 8) {
    return data_loss(
        "{}: file is {} bytes, shorter than the 8-byte header length; it is truncated or not a "
        "safetensors file",
        file, size);
  }
  header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | mapped.data()[i];
  if (header_len > kMaxHeaderBytes) {
    return data_loss(
        "{}: header length {} exceeds the {} byte limit; the file is corrupt or not a "
        "safetensors file",
        file, header_len, kMaxHeaderBytes);
  }
  if (header_len > size - 8) {
    return data_loss(
        "{}: header length {} runs past the end of the {} byte file; the file is truncated",
        file, header_len, size);
  }
  if (header_len < 2) {
    return data_loss("{}: header length {} is too short for a JSON object; the file is corrupt",
                     file, header_len);
  }
  const char* header = reinterpret_cast<const char*>(mapped.data() + 8);
  root = json::parse(header, header + header_len, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return data_loss("{}: header is not valid JSON; the file is corrupt", file);
  if (!root.is_object()) return data_loss("{}: header is JSON but not an object; the file is corrupt", file);
  return ok_status();
}

Status check_no_overlap(const std::string& file, std::vector<const ParsedTensor*> by_offset) {
  std::sort(by_offset.begin(), by_offset.end(),
            [](const ParsedTensor* a, const ParsedTensor* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const ParsedTensor& prev = *by_offset[i - 1];
    const ParsedTensor& cur = *by_offset[i];
    if (cur.begin < prev.end) {
      return data_loss(
          "{}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap in the data section; the file is "
          "corrupt",
          file, prev.view.name, prev.begin, prev.end, cur.view.name, cur.begin, cur.end);
    }
  }
  return ok_status();
}

// Parses and validates one file's header; every tensor it declares goes into `out`.
Status parse_safetensors_file(const MappedFile& mapped, std::map<std::string, ParsedTensor>& out) {
  const std::string& file = mapped.path();
  json root;
  uint64_t header_len = 0;
  STRATA_RETURN_IF_ERROR(read_header(mapped, root, header_len));
  const uint8_t* data = mapped.data() + 8 + header_len;
  const uint64_t data_size = mapped.size() - 8 - header_len;
  std::vector<const ParsedTensor*> by_offset;
  for (const auto& [name, entry] : root.items()) {
    if (name == "__metadata__") continue;
    ParsedTensor parsed;
    STRATA_RETURN_IF_ERROR(check_header_entry(file, name, entry, data_size, data, parsed));
    auto [it, inserted] = out.emplace(name, std::move(parsed));
    if (!inserted) return data_loss("{}: tensor '{}' is declared twice", file, name);
    if (it->second.end > it->second.begin) by_offset.push_back(&it->second);
  }
  return check_no_overlap(file, std::move(by_offset));
}

StatusOr<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return not_found("cannot open {}: {}", path, std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A shard name from an index must stay inside the checkpoint directory.
bool is_plain_relative(const std::string& name) {
  const fs::path p(name);
  if (name.empty() || p.is_absolute()) return false;
  for (const fs::path& part : p) {
    if (part == "..") return false;
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// SafetensorView / SafetensorsCheckpoint

namespace {

// One shard of an indexed checkpoint, mapped and parsed; `tensor` names the index entry
// that first listed it, for the message when it is missing.
StatusOr<std::shared_ptr<MappedFile>> open_shard(const std::string& index, const std::string& shard_path,
                                                 const std::string& tensor,
                                                 std::map<std::string, ParsedTensor>& parsed) {
  std::error_code ec;
  if (!fs::exists(shard_path, ec)) {
    return not_found("{}: shard {} (listed for tensor '{}') does not exist; the checkpoint "
                     "is incomplete",
                     index, shard_path, tensor);
  }
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> mapped, MappedFile::open(shard_path));
  STRATA_RETURN_IF_ERROR(parse_safetensors_file(*mapped, parsed));
  return mapped;
}

}  // namespace

int64_t SafetensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

StatusOr<SafetensorsCheckpoint> SafetensorsCheckpoint::open(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    if (fs::exists(dir / kIndexFileName, ec)) return open((dir / kIndexFileName).string());
    if (fs::exists(dir / kSingleFileName, ec)) return open((dir / kSingleFileName).string());
    return not_found("{} has neither {} nor {}; point at a safetensors checkpoint directory",
                     path, kIndexFileName, kSingleFileName);
  }
  if (!fs::exists(path, ec)) {
    return not_found("checkpoint {} does not exist", path);
  }

  SafetensorsCheckpoint ckpt;
  ckpt.path_ = path;

  if (fs::path(path).extension() != ".json") {  // one .safetensors file
    STRATA_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> mapped, MappedFile::open(path));
    std::map<std::string, ParsedTensor> parsed;
    STRATA_RETURN_IF_ERROR(parse_safetensors_file(*mapped, parsed));
    for (auto& [name, tensor] : parsed) ckpt.tensors_.emplace(name, std::move(tensor.view));
    ckpt.files_.push_back(std::move(mapped));
    return ckpt;
  }

  STRATA_RETURN_IF_ERROR(ckpt.open_index(path));
  return ckpt;
}

// An index: {"metadata": {...}, "weight_map": {tensor: shard file}}; each shard is mapped
// and parsed once, however many tensors it holds.
Status SafetensorsCheckpoint::open_index(const std::string& path) {
  STRATA_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  const json index = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded() || !index.is_object()) {
    return data_loss("{}: not a valid JSON object; the index is corrupt", path);
  }
  auto map_it = index.find("weight_map");
  if (map_it == index.end() || !map_it->is_object()) {
    return data_loss("{}: has no `weight_map` object mapping tensor names to shard files", path);
  }
  if (map_it->empty()) return data_loss("{}: `weight_map` lists no tensors", path);
  const fs::path dir = fs::path(path).parent_path();
  std::map<std::string, std::map<std::string, ParsedTensor>> shards;  // shard name → header
  for (const auto& [name, shard_json] : map_it->items()) {
    if (!shard_json.is_string() || !is_plain_relative(shard_json.get<std::string>())) {
      return data_loss(
          "{}: `weight_map` entry for tensor '{}' must be a shard file name relative to the "
          "index's directory. Given: {}",
          path, name, shard_json.dump());
    }
    const std::string shard = shard_json.get<std::string>();
    auto shard_it = shards.find(shard);
    if (shard_it == shards.end()) {
      std::map<std::string, ParsedTensor> parsed;
      STRATA_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> mapped,
                              open_shard(path, (dir / shard).string(), name, parsed));
      files_.push_back(std::move(mapped));
      shard_it = shards.emplace(shard, std::move(parsed)).first;
    }
    auto tensor_it = shard_it->second.find(name);
    if (tensor_it == shard_it->second.end()) {
      return data_loss("{}: tensor '{}' is listed in the index but absent from shard {}", path,
                       name, (dir / shard).string());
    }
    tensors_.emplace(name, tensor_it->second.view);
  }
  return ok_status();
}

StatusOr<SafetensorView> SafetensorsCheckpoint::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it != tensors_.end()) return it->second;
  std::string examples;
  size_t shown = 0;
  for (auto t = tensors_.begin(); t != tensors_.end() && shown < 3; ++t, ++shown) {
    examples += fmt::format("{}'{}'", shown ? ", " : "", t->first);
  }
  return not_found("tensor '{}' not found in {}; it has {} tensors{}{}", name, path_,
                   tensors_.size(), tensors_.empty() ? "" : ", e.g. ", examples);
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, view] : tensors_) out.push_back(name);  // std::map: already sorted
  return out;
}

void SafetensorsCheckpoint::release(const SafetensorView& view) const {
  for (const auto& file : files_) {
    if (file->path() == view.file) file->release(view.data, view.nbytes);
  }
}

}  // namespace strata
