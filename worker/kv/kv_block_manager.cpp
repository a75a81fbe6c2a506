#include "worker/kv/kv_block_manager.h"

#include "common/check.h"

namespace strata {

KvBlockManager::KvBlockManager(int64_t num_blocks, int32_t block_size)
    : block_size_(block_size), pool_(num_blocks), ref_counts_(static_cast<size_t>(num_blocks), 0) {
  STRATA_CHECK(block_size > 0 && num_blocks >= 0);
}

int64_t KvBlockManager::blocks_missing(const std::vector<int32_t>& table, int64_t num_tokens) const {
  const int64_t needed = blocks_for_tokens(num_tokens, block_size_);
  return std::max<int64_t>(0, needed - static_cast<int64_t>(table.size()));
}

bool KvBlockManager::grow(std::vector<int32_t>& table, int64_t num_tokens, int64_t reserve) {
  const int64_t missing = blocks_missing(table, num_tokens);
  if (missing == 0) return true;
  if (pool_.num_free() - missing < reserve) return false;
  for (int64_t i = 0; i < missing; ++i) {
    const int32_t id = *pool_.allocate();
    STRATA_CHECK(ref_counts_[static_cast<size_t>(id)] == 0);
    ref_counts_[static_cast<size_t>(id)] = 1;
    table.push_back(id);
  }
  return true;
}

void KvBlockManager::release(std::vector<int32_t>& table) {
  for (int32_t id : table) {
    int32_t& count = ref_counts_[static_cast<size_t>(id)];
    STRATA_CHECK(count > 0);
    if (--count == 0) pool_.free(id);
  }
  table.clear();
}

}  // namespace strata
