// PrefixIndex: the router's guess of which prompt blocks one worker group still caches: the
// chained block hashes (common/block_hash.h) of the prompts it sent there, least recently
// sent forgotten first once they outnumber the blocks the group holds. It only steers
// placement (placement.h): a wrong guess costs a group a prefill it hoped to skip, never a
// wrong token, since the worker finds its cache hits itself.
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>

#include "common/block_hash.h"

namespace strata::router {

// Tokens per block the router hashes prompts at: hashes are taken once, on arrival, before
// any group is chosen (groups may differ in --block-size; 16 is the worker's default).
inline constexpr int32_t kPrefixIndexBlockTokens = 16;

class PrefixIndex {
 public:
  // How many leading blocks of the chain `hashes` were sent here and not forgotten.
  int64_t matched_blocks(std::span<const BlockHash> hashes) const;
  // The chain was sent here: its blocks become the most recently sent.
  void insert(std::span<const BlockHash> hashes);
  // Forgets the least recently sent blocks beyond `capacity` (the group's KV blocks).
  void set_capacity(int64_t capacity);
  int64_t size() const { return static_cast<int64_t>(lru_.size()); }

 private:
  void shrink();

  int64_t capacity_ = 0;
  std::list<BlockHash> lru_;  // front: sent longest ago
  std::unordered_map<BlockHash, std::list<BlockHash>::iterator> where_;
};

}  // namespace strata::router
