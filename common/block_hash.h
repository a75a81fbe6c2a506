// Block hashes: the identity of a full KV block as the chain of token ids that led to it.
// A block's hash covers its own token ids and its parent's hash (the first block's parent is
// a seed: kFirstBlockParent in a worker, whose cache serves one model at one KV dtype; a
// router placing prefixes of several models would seed with the model's name), so equal
// hashes mean equal whole prefixes. The worker's prefix cache keys blocks by it; a router can
// compute the same chain from the token ids it sends to guess where a prefix is cached.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace strata {

using BlockHash = uint64_t;

inline constexpr BlockHash kFirstBlockParent = 0;
// XXH3-64 over the block's token ids, seeded with the parent's hash.
BlockHash chain_block_hash(BlockHash parent, std::span<const int32_t> block_tokens);
// The chain of `tokens`' full blocks of `block_size` (a partial last block has none).
std::vector<BlockHash> chain_block_hashes(std::span<const int32_t> tokens, int32_t block_size);

}  // namespace strata
