// KvBlockManager: which KV-cache blocks each sequence holds. Block ids come from a free
// list (O(1) allocate and free). Each carries a reference count: the sequences holding it,
// more than one when they share a cached prefix. With prefix caching, a full block whose
// K/V are computed is indexed by its chained hash (worker/kv/prefix_cache.h) and, once no
// sequence holds it, stays cached until the pool needs it: every block is free (never used
// or evicted), cached (unreferenced, holding a prefix) or used, and free + cached + used ==
// total. It decides nothing about who runs: the scheduler asks it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/block_hash.h"
#include "worker/kv/block_pool.h"
#include "worker/kv/prefix_cache.h"

namespace strata {

struct KvBlockStats {
  int64_t total = 0;
  int64_t free = 0;             // never used, or evicted
  int64_t cached = 0;           // held by no sequence, kept for its prefix: reclaimable
  int64_t used_by_running = 0;  // filled in by the scheduler, which knows who runs
  int64_t used_by_waiting = 0;  // partially prefilled sequences never wait, so this stays 0
                                // unless a policy keeps blocks across preemption
  int64_t reclaimable() const { return free + cached; }
};

class KvBlockManager {
 public:
  KvBlockManager(int64_t num_blocks, int32_t block_size, bool prefix_caching = false);

  int32_t block_size() const { return block_size_; }
  bool prefix_caching() const { return prefix_caching_; }
  int64_t num_total() const { return pool_.num_total(); }
  int64_t num_free() const { return pool_.num_free(); }
  int64_t num_cached() const { return cache_.num_parked(); }
  // What allocation may use: free blocks, then cached ones (evicting their prefixes).
  int64_t num_reclaimable() const { return num_free() + num_cached(); }
  int64_t num_evictions() const { return cache_.num_evictions(); }

  static int64_t blocks_for_tokens(int64_t num_tokens, int32_t block_size) {
    return (num_tokens + block_size - 1) / block_size;
  }
  // Blocks `table` must gain to cover `num_tokens` positions.
  int64_t blocks_missing(const std::vector<int32_t>& table, int64_t num_tokens) const;

  // Grows `table` to cover `num_tokens` positions if `reserve` blocks would still be
  // reclaimable afterwards; otherwise allocates nothing and returns false.
  bool grow(std::vector<int32_t>& table, int64_t num_tokens, int64_t reserve = 0);
  // The cached blocks holding the longest prefix of the chain `hashes` (nothing without
  // prefix caching). Takes no reference: pass them to grow_from_prefix in the same step.
  std::vector<int32_t> cached_prefix(std::span<const BlockHash> hashes) const;
  // An empty `table` starts with `prefix` (shared, one more reference each) and grows to
  // `num_tokens` positions, if `reserve` blocks would still be reclaimable afterwards;
  // otherwise nothing changes and it returns false.
  bool grow_from_prefix(std::vector<int32_t>& table, const std::vector<int32_t>& prefix,
                        int64_t num_tokens, int64_t reserve = 0);
  // `block_id` is full and its K/V are computed: it holds the prefix `hash` from now on.
  void cache_full_block(int32_t block_id, BlockHash hash);
  // Drops one reference to each block of `table` and clears it. Blocks nobody holds are
  // freed, or parked when cached: last blocks first, so a prefix's tail is evicted first.
  void release(std::vector<int32_t>& table);
  // Releases the blocks of `table` past the first ones covering `num_tokens` positions (the
  // slots of rejected speculative tokens), last first, as release() does.
  void truncate(std::vector<int32_t>& table, int64_t num_tokens);
  int32_t ref_count(int32_t block_id) const { return ref_counts_[static_cast<size_t>(block_id)]; }

 private:
  int32_t allocate();

  int32_t block_size_;
  bool prefix_caching_;
  BlockPool pool_;
  PrefixCache cache_;
  std::vector<int32_t> ref_counts_;
};

}  // namespace strata
