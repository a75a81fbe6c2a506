#include "router/scheduling/prefix_index.h"

namespace strata::router {

int64_t PrefixIndex::matched_blocks(std::span<const BlockHash> hashes) const {
  int64_t n = 0;
  while (n < static_cast<int64_t>(hashes.size()) && where_.count(hashes[static_cast<size_t>(n)])) ++n;
  return n;
}

void PrefixIndex::insert(std::span<const BlockHash> hashes) {
  // The chain's head goes last, so it is the most recent: a prefix is forgotten tail first,
  // as the worker evicts it.
  for (auto it = hashes.rbegin(); it != hashes.rend(); ++it) {
    const auto found = where_.find(*it);
    if (found != where_.end()) {
      lru_.splice(lru_.end(), lru_, found->second);
    } else {
      where_.emplace(*it, lru_.insert(lru_.end(), *it));
    }
  }
  shrink();
}

void PrefixIndex::set_capacity(int64_t capacity) {
  capacity_ = capacity;
  shrink();
}

void PrefixIndex::shrink() {
  while (static_cast<int64_t>(lru_.size()) > capacity_ && !lru_.empty()) {
    where_.erase(lru_.front());
    lru_.pop_front();
  }
}

}  // namespace strata::router
