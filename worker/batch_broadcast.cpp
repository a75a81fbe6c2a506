#include "worker/batch_broadcast.h"

#include "common/check.h"

namespace strata {

// Layout: [num_tokens, num_seqs, tokens..., then per sequence: computed, new, want_logits,
// table_len, table...]. Plain int32 words: the ranks of one group run the same binary.
std::vector<int32_t> encode_batch(const ForwardBatch& batch) {
  std::vector<int32_t> w;
  w.reserve(2 + batch.token_ids.size() + batch.sequences.size() * 8);
  w.push_back(static_cast<int32_t>(batch.token_ids.size()));
  w.push_back(static_cast<int32_t>(batch.sequences.size()));
  w.insert(w.end(), batch.token_ids.begin(), batch.token_ids.end());
  for (const ForwardSequence& s : batch.sequences) {
    w.push_back(s.num_computed_tokens);
    w.push_back(s.num_new_tokens);
    w.push_back(s.want_logits ? 1 : 0);
    w.push_back(static_cast<int32_t>(s.block_table.size()));
    w.insert(w.end(), s.block_table.begin(), s.block_table.end());
  }
  return w;
}

void decode_batch(const std::vector<int32_t>& w, OwnedBatch& out) {
  size_t i = 0;
  auto next = [&] {
    STRATA_CHECK(i < w.size());
    return w[i++];
  };
  const int32_t num_tokens = next(), num_seqs = next();
  out.batch.token_ids.assign(w.begin() + 2, w.begin() + 2 + num_tokens);
  i = 2 + static_cast<size_t>(num_tokens);
  out.tables.assign(static_cast<size_t>(num_seqs), {});
  out.batch.sequences.clear();
  for (int32_t s = 0; s < num_seqs; ++s) {
    ForwardSequence seq;
    seq.num_computed_tokens = next();
    seq.num_new_tokens = next();
    seq.want_logits = next() != 0;
    const int32_t len = next();
    STRATA_CHECK(i + static_cast<size_t>(len) <= w.size());
    out.tables[static_cast<size_t>(s)].assign(w.begin() + static_cast<int64_t>(i), w.begin() + static_cast<int64_t>(i) + len);
    i += static_cast<size_t>(len);
    out.batch.sequences.push_back(seq);
  }
  for (size_t s = 0; s < out.tables.size(); ++s) out.batch.sequences[s].block_table = out.tables[s];
}

void broadcast_batch(Communicator& world, const ForwardBatch& batch) {
  std::vector<int32_t> words = encode_batch(batch);
  int64_t size = static_cast<int64_t>(words.size());
  world.broadcast(&size, sizeof size, 0);
  world.broadcast(words.data(), words.size() * sizeof(int32_t), 0);
}

void broadcast_stop(Communicator& world) {
  int64_t size = -1;
  world.broadcast(&size, sizeof size, 0);
}

bool receive_batch(Communicator& world, OwnedBatch& out) {
  int64_t size = 0;
  world.broadcast(&size, sizeof size, 0);
  if (size < 0) return false;
  std::vector<int32_t> words(static_cast<size_t>(size));
  world.broadcast(words.data(), words.size() * sizeof(int32_t), 0);
  decode_batch(words, out);
  return true;
}

}  // namespace strata
