// BlockPool: hands out KV-cache block ids. O(1) allocate and free from a free list; a block
// is freed exactly once (a double free is a bug and stops the process with file and line).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace strata {

class BlockPool {
 public:
  explicit BlockPool(int64_t num_blocks);

  std::optional<int32_t> allocate();
  void free(int32_t block_id);
  int64_t num_free() const { return static_cast<int64_t>(free_list_.size()); }
  int64_t num_total() const { return static_cast<int64_t>(in_use_.size()); }

 private:
  std::vector<int32_t> free_list_;
  std::vector<bool> in_use_;
};

}  // namespace strata
