#include "worker/kv/block_pool.h"

#include "common/check.h"

namespace strata {

BlockPool::BlockPool(int64_t num_blocks) : in_use_(static_cast<size_t>(num_blocks), false) {
  free_list_.reserve(static_cast<size_t>(num_blocks));
  // Lowest ids first, so a fresh pool hands out 0, 1, 2, ... (easier to read in logs).
  for (int64_t i = num_blocks - 1; i >= 0; --i) free_list_.push_back(static_cast<int32_t>(i));
}

std::optional<int32_t> BlockPool::allocate() {
  if (free_list_.empty()) return std::nullopt;
  const int32_t id = free_list_.back();
  free_list_.pop_back();
  in_use_[static_cast<size_t>(id)] = true;
  return id;
}

void BlockPool::free(int32_t block_id) {
  STRATA_CHECK(block_id >= 0 && static_cast<size_t>(block_id) < in_use_.size());
  STRATA_CHECK(in_use_[static_cast<size_t>(block_id)]);
  in_use_[static_cast<size_t>(block_id)] = false;
  free_list_.push_back(block_id);
}

}  // namespace strata
