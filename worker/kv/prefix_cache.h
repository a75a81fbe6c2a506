// PrefixCache: which KV blocks hold which whole prefixes, and which of those no sequence
// uses any more. A full block whose K/V are computed is indexed by its chained hash
// (common/block_hash.h); when its last user lets go it is parked on an LRU list instead of
// freed, so a later sequence with the same prefix takes it back; the pool evicts the least
// recently parked block only when it has no never-used block left. A false hit would need
// two different prefixes whose 64-bit chained hashes collide.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <unordered_map>
#include <vector>

#include "common/block_hash.h"

namespace strata {

class PrefixCache {
 public:
  explicit PrefixCache(int64_t num_blocks);

  // The block holding the prefix whose last block hashes to `hash`, if any.
  std::optional<int32_t> find(BlockHash hash) const;
  // Records that `block_id` holds the prefix `hash`. Nothing changes when another block
  // already holds that prefix (two sequences computed it at once) or this block holds one.
  void insert(int32_t block_id, BlockHash hash);
  bool holds_prefix(int32_t block_id) const { return hash_of_[index(block_id)].has_value(); }

  // A cached block's last user let go: it becomes the most recently parked.
  void park(int32_t block_id);
  // A sequence took a parked block again.
  void unpark(int32_t block_id);
  bool is_parked(int32_t block_id) const { return parked_at_[index(block_id)].has_value(); }
  // The least recently parked block, its prefix forgotten; nullopt when none is parked.
  std::optional<int32_t> evict();

  int64_t num_parked() const { return static_cast<int64_t>(lru_.size()); }
  int64_t num_cached() const { return static_cast<int64_t>(by_hash_.size()); }
  int64_t num_evictions() const { return num_evictions_; }

 private:
  static size_t index(int32_t block_id) { return static_cast<size_t>(block_id); }

  std::unordered_map<BlockHash, int32_t> by_hash_;
  std::vector<std::optional<BlockHash>> hash_of_;
  std::list<int32_t> lru_;  // front: parked longest ago
  std::vector<std::optional<std::list<int32_t>::iterator>> parked_at_;
  int64_t num_evictions_ = 0;
};

}  // namespace strata
