// Tensor: a typed, shaped view of a device buffer. Every tensor knows its device, so the
// layers above kernels/ never assume host memory; only kernels dereference data().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/dtype.h"

namespace strata {

enum class DeviceType : uint8_t { kCpu, kCuda };

struct Device {
  DeviceType type = DeviceType::kCpu;
  int index = 0;
  bool operator==(const Device&) const = default;
  bool is_cpu() const { return type == DeviceType::kCpu; }
  std::string to_string() const;
};

// How a non-CPU device allocates. kernels/cuda registers one for DeviceType::kCuda
// (kernels/cuda/device_allocator.h), so CPU-only builds carry no CUDA code. allocate returns
// zeroed memory, or nullptr when the device (or its budget) is out of memory.
struct DeviceAllocator {
  void* (*allocate)(int device_index, size_t bytes) = nullptr;
  void (*release)(int device_index, void* data, size_t bytes) = nullptr;
};
void register_device_allocator(DeviceType type, DeviceAllocator allocator);

// Owns one allocation on one device. CPU memory is 64-byte aligned for AVX-512 loads.
class Buffer {
 public:
  static std::shared_ptr<Buffer> allocate(Device device, size_t bytes);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  Buffer(Device device, void* data, size_t bytes, bool mapped = false)
      : device_(device), data_(data), bytes_(bytes), mapped_(mapped) {}
  Device device_;
  void* data_;
  size_t bytes_;
  bool mapped_;  // a large CPU buffer from mmap (see allocate), released with munmap
};

class Tensor {
 public:
  Tensor() = default;
  // Allocates uninitialized storage (zeroed on CPU, so a bug reads zeros, not garbage).
  static Tensor empty(DType dtype, std::vector<int64_t> shape, Device device = {});

  bool defined() const { return buffer_ != nullptr; }
  DType dtype() const { return dtype_; }
  Device device() const { return buffer_ ? buffer_->device() : Device{}; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_.at(static_cast<size_t>(i < 0 ? i + rank() : i)); }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }

  void* raw() const { return static_cast<char*>(buffer_->data()) + offset_bytes_; }
  template <typename T>
  T* data() const {
    return static_cast<T*>(raw());
  }

  // A view of rows [begin, end) along dimension 0, sharing storage.
  Tensor slice_rows(int64_t begin, int64_t end) const;
  std::string shape_string() const;

 private:
  DType dtype_ = DType::kF32;
  std::vector<int64_t> shape_;
  std::shared_ptr<Buffer> buffer_;
  size_t offset_bytes_ = 0;
};

}  // namespace strata
