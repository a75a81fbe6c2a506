// KvBlockManager: which KV-cache blocks each sequence holds. Block ids come from a free
// list (O(1) allocate and free). Each carries a reference count, 1 while a sequence holds it
// (no two sequences share a block yet), which checks that a block returns to the free list
// exactly once. It decides nothing about who runs: the scheduler asks it.
#pragma once

#include <cstdint>
#include <vector>

#include "worker/kv/block_pool.h"

namespace strata {

struct KvBlockStats {
  int64_t total = 0;
  int64_t free = 0;
  int64_t used_by_running = 0;  // filled in by the scheduler, which knows who runs
  int64_t used_by_waiting = 0;  // partially prefilled sequences never wait, so this stays 0
                                // unless a policy keeps blocks across preemption
};

class KvBlockManager {
 public:
  KvBlockManager(int64_t num_blocks, int32_t block_size);

  int32_t block_size() const { return block_size_; }
  int64_t num_total() const { return pool_.num_total(); }
  int64_t num_free() const { return pool_.num_free(); }

  static int64_t blocks_for_tokens(int64_t num_tokens, int32_t block_size) {
    return (num_tokens + block_size - 1) / block_size;
  }
  // Blocks `table` must gain to cover `num_tokens` positions.
  int64_t blocks_missing(const std::vector<int32_t>& table, int64_t num_tokens) const;

  // Grows `table` to cover `num_tokens` positions if `reserve` blocks would still be free
  // afterwards; otherwise allocates nothing and returns false.
  bool grow(std::vector<int32_t>& table, int64_t num_tokens, int64_t reserve = 0);
  // Drops one reference to each block of `table` and clears it.
  void release(std::vector<int32_t>& table);
  int32_t ref_count(int32_t block_id) const { return ref_counts_[static_cast<size_t>(block_id)]; }

 private:
  int32_t block_size_;
  BlockPool pool_;
  std::vector<int32_t> ref_counts_;
};

}  // namespace strata
