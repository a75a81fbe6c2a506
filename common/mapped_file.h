// MappedFile: a whole file mapped read-only (the safetensors, llama2.c and GGUF readers
// share it). Tensors are views into the mapping, so a rank that needs only a slice of a
// tensor touches only those pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace strata {

// A read-only memory mapping of a whole file.
class MappedFile {
 public:
  static StatusOr<std::shared_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

  // Drops the whole pages inside [begin, begin + bytes) from this process's resident set:
  // a loader that has copied a tensor out calls it, so peak memory is the copies, not the
  // copies plus the file. The pages stay in the page cache and are read back if touched
  // again (the mapping is read-only and file-backed, so the contents never change).
  void release(const void* begin, size_t bytes) const;
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const uint8_t* data_;
  size_t size_;
};

}  // namespace strata
