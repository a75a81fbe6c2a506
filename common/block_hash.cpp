#include "common/block_hash.h"

#include <xxhash.h>

namespace strata {

BlockHash chain_block_hash(BlockHash parent, std::span<const int32_t> block_tokens) {
  return XXH3_64bits_withSeed(block_tokens.data(), block_tokens.size_bytes(), parent);
}

std::vector<BlockHash> chain_block_hashes(std::span<const int32_t> tokens, int32_t block_size) {
  std::vector<BlockHash> hashes;
  BlockHash parent = kFirstBlockParent;
  for (size_t start = 0; start + static_cast<size_t>(block_size) <= tokens.size(); start += static_cast<size_t>(block_size)) {
    parent = chain_block_hash(parent, tokens.subspan(start, static_cast<size_t>(block_size)));
    hashes.push_back(parent);
  }
  return hashes;
}

}  // namespace strata
