// Read-only access to HF safetensors checkpoints: one `model.safetensors` or shards listed
// in `model.safetensors.index.json`. Files are mmap'd; tensors are views into the mapping,
// so a rank that needs only a slice of a tensor touches only those pages.
// Format: 8-byte little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the data.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/mapped_file.h"
#include "common/status.h"
#include "kernels/dtype.h"

namespace strata {

struct SafetensorView {
  std::string name;
  std::string file;  // path of the shard holding it, for error messages
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // inside the mapping; valid while the checkpoint lives
  size_t nbytes = 0;
  int64_t numel() const;
};

class SafetensorsCheckpoint {
 public:
  // `path` is a directory (model.safetensors.index.json preferred, else model.safetensors),
  // a `.safetensors` file, or an index `.json`. Every header is validated on open: dtype
  // known (F32, BF16, F16, I32, I8, U8), offsets inside the file, sizes equal to
  // shape × dtype size, no overlaps. Errors name the file and the tensor. With an index,
  // only the tensors its weight_map lists are exposed (each shard is still fully checked).
  static StatusOr<SafetensorsCheckpoint> open(const std::string& path);

  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  // NotFound naming the tensor and the checkpoint when absent.
  StatusOr<SafetensorView> get(const std::string& name) const;
  std::vector<std::string> names() const;
  // Drops the view's pages from memory once it has been copied out (MappedFile::release).
  void release(const SafetensorView& view) const;
  const std::string& path() const { return path_; }

 private:
  Status open_index(const std::string& path);
  std::string path_;
  std::vector<std::shared_ptr<MappedFile>> files_;
  std::map<std::string, SafetensorView> tensors_;
};

}  // namespace strata
