#include "kernels/tensor.h"

#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include <fmt/format.h>

#include "common/check.h"

namespace strata {

std::string Device::to_string() const {
  return type == DeviceType::kCpu ? "cpu" : fmt::format("cuda:{}", index);
}

namespace {

// CPU buffers from this size up are mapped pages rather than heap memory.
constexpr size_t kMappedBufferBytes = size_t{4} << 20;

DeviceAllocator& cuda_allocator() {
  static DeviceAllocator allocator;
  return allocator;
}

}  // namespace

void register_device_allocator(DeviceType type, DeviceAllocator allocator) {
  STRATA_CHECK(type == DeviceType::kCuda && allocator.allocate && allocator.release);
  cuda_allocator() = allocator;
}

std::shared_ptr<Buffer> Buffer::allocate(Device device, size_t bytes) {
  if (!device.is_cpu()) {
    const DeviceAllocator& allocator = cuda_allocator();
    if (allocator.allocate == nullptr) {
      std::fprintf(stderr,
                   "strata: no allocator for %s: build with STRATA_CUDA=ON and call "
                   "kernels::cuda::init_device_memory() first\n",
                   device.to_string().c_str());
      STRATA_CHECK(allocator.allocate != nullptr);
    }
    void* data = allocator.allocate(device.index, bytes);
    if (data == nullptr) throw std::bad_alloc();
    return std::shared_ptr<Buffer>(new Buffer(device, data, bytes));
  }
  if (bytes >= kMappedBufferBytes) {
    // Weights are gigabytes: fresh anonymous pages come zeroed, so the memset pass over them
    // goes, and where transparent huge pages are on, 2 MiB pages take far fewer faults. The
    // pages are faulted in by their first write (packing, or a KV block's first use).
    void* data = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (data == MAP_FAILED) throw std::bad_alloc();
    ::madvise(data, bytes, MADV_HUGEPAGE);  // advice only: without THP it stays 4 KiB pages
    return std::shared_ptr<Buffer>(new Buffer(device, data, bytes, /*mapped=*/true));
  }
  const size_t rounded = (bytes + 63) / 64 * 64;
  void* data = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  if (data == nullptr) throw std::bad_alloc();
  std::memset(data, 0, rounded == 0 ? 64 : rounded);
  return std::shared_ptr<Buffer>(new Buffer(device, data, bytes));
}

Buffer::~Buffer() {
  if (mapped_) {
    ::munmap(data_, bytes_);
  } else if (device_.is_cpu()) {
    std::free(data_);
  } else {
    cuda_allocator().release(device_.index, data_, bytes_);
  }
}

Tensor Tensor::empty(DType dtype, std::vector<int64_t> shape, Device device) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.buffer_ = Buffer::allocate(device, t.nbytes());
  return t;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

Tensor Tensor::slice_rows(int64_t begin, int64_t end) const {
  STRATA_CHECK(rank() >= 1 && begin >= 0 && begin <= end && end <= shape_[0]);
  Tensor t = *this;
  const int64_t row_elems = shape_[0] == 0 ? 0 : numel() / shape_[0];
  t.offset_bytes_ += static_cast<size_t>(begin * row_elems) * dtype_size(dtype_);
  t.shape_[0] = end - begin;
  return t;
}

std::string Tensor::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape_.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", shape_[i]);
  return s + "]";
}

}  // namespace strata
