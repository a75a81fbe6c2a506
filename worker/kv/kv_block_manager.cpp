#include "worker/kv/kv_block_manager.h"

#include <algorithm>

#include "common/check.h"

namespace strata {

KvBlockManager::KvBlockManager(int64_t num_blocks, int32_t block_size, bool prefix_caching)
    : block_size_(block_size),
      prefix_caching_(prefix_caching),
      pool_(num_blocks),
      cache_(num_blocks),
      ref_counts_(static_cast<size_t>(num_blocks), 0) {
  STRATA_CHECK(block_size > 0 && num_blocks >= 0);
}

int64_t KvBlockManager::blocks_missing(const std::vector<int32_t>& table, int64_t num_tokens) const {
  const int64_t needed = blocks_for_tokens(num_tokens, block_size_);
  return std::max<int64_t>(0, needed - static_cast<int64_t>(table.size()));
}

int32_t KvBlockManager::allocate() {
  std::optional<int32_t> id = pool_.allocate();
  if (!id) id = cache_.evict();  // the caller checked num_reclaimable()
  STRATA_CHECK(id.has_value() && ref_counts_[static_cast<size_t>(*id)] == 0);
  ref_counts_[static_cast<size_t>(*id)] = 1;
  return *id;
}

bool KvBlockManager::grow(std::vector<int32_t>& table, int64_t num_tokens, int64_t reserve) {
  const int64_t missing = blocks_missing(table, num_tokens);
  if (missing == 0) return true;
  if (num_reclaimable() - missing < reserve) return false;
  for (int64_t i = 0; i < missing; ++i) table.push_back(allocate());
  return true;
}

std::vector<int32_t> KvBlockManager::cached_prefix(std::span<const BlockHash> hashes) const {
  std::vector<int32_t> blocks;
  if (!prefix_caching_) return blocks;
  for (BlockHash hash : hashes) {
    const std::optional<int32_t> id = cache_.find(hash);
    if (!id) break;
    blocks.push_back(*id);
  }
  return blocks;
}

bool KvBlockManager::grow_from_prefix(std::vector<int32_t>& table, const std::vector<int32_t>& prefix,
                                      int64_t num_tokens, int64_t reserve) {
  STRATA_CHECK(table.empty());
  // Taking a parked block back costs a reclaimable block just as allocating one does.
  const auto parked = std::count_if(prefix.begin(), prefix.end(),
                                    [&](int32_t id) { return cache_.is_parked(id); });
  const int64_t fresh = std::max<int64_t>(0, blocks_for_tokens(num_tokens, block_size_) -
                                                 static_cast<int64_t>(prefix.size()));
  if (num_reclaimable() - parked - fresh < reserve) return false;
  for (int32_t id : prefix) {
    if (ref_counts_[static_cast<size_t>(id)]++ == 0) cache_.unpark(id);
  }
  table = prefix;
  for (int64_t i = 0; i < fresh; ++i) table.push_back(allocate());
  return true;
}

void KvBlockManager::cache_full_block(int32_t block_id, BlockHash hash) {
  STRATA_CHECK(ref_count(block_id) > 0);
  if (prefix_caching_) cache_.insert(block_id, hash);
}

void KvBlockManager::release(std::vector<int32_t>& table) { truncate(table, 0); }

void KvBlockManager::truncate(std::vector<int32_t>& table, int64_t num_tokens) {
  const auto keep = static_cast<size_t>(blocks_for_tokens(num_tokens, block_size_));
  while (table.size() > keep) {
    const int32_t block = table.back();
    table.pop_back();
    int32_t& count = ref_counts_[static_cast<size_t>(block)];
    STRATA_CHECK(count > 0);
    if (--count > 0) continue;
    if (cache_.holds_prefix(block)) {
      cache_.park(block);
    } else {
      pool_.free(block);
    }
  }
}

}  // namespace strata
