#include "worker/kv/prefix_cache.h"

#include "common/check.h"

namespace strata {

PrefixCache::PrefixCache(int64_t num_blocks)
    : hash_of_(static_cast<size_t>(num_blocks)), parked_at_(static_cast<size_t>(num_blocks)) {}

std::optional<int32_t> PrefixCache::find(BlockHash hash) const {
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return std::nullopt;
  return it->second;
}

void PrefixCache::insert(int32_t block_id, BlockHash hash) {
  std::optional<BlockHash>& own = hash_of_[index(block_id)];
  if (own.has_value() || by_hash_.count(hash)) return;
  own = hash;
  by_hash_.emplace(hash, block_id);
}

void PrefixCache::park(int32_t block_id) {
  STRATA_CHECK(holds_prefix(block_id) && !is_parked(block_id));
  parked_at_[index(block_id)] = lru_.insert(lru_.end(), block_id);
}

void PrefixCache::unpark(int32_t block_id) {
  auto& at = parked_at_[index(block_id)];
  STRATA_CHECK(at.has_value());
  lru_.erase(*at);
  at.reset();
}

std::optional<int32_t> PrefixCache::evict() {
  if (lru_.empty()) return std::nullopt;
  const int32_t id = lru_.front();
  unpark(id);
  std::optional<BlockHash>& hash = hash_of_[index(id)];
  by_hash_.erase(*hash);
  hash.reset();
  ++num_evictions_;
  return id;
}

}  // namespace strata
