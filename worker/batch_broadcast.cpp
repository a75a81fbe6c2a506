#include "worker/batch_broadcast.h"

#include <algorithm>

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

std::vector<ForwardBatch> split_micro_batches(const ForwardBatch& batch, int n) {
  const size_t num_seqs = batch.sequences.size();
  if (n <= 1 || num_seqs <= 1) return {batch};
  const size_t parts = std::min(static_cast<size_t>(n), num_seqs);
  const size_t total = batch.token_ids.size();
  std::vector<ForwardBatch> out(1);
  size_t token = 0, taken = 0;
  for (size_t s = 0; s < num_seqs; ++s) {
    const ForwardSequence& seq = batch.sequences[s];
    // Start the next micro-batch once this one holds its share of the tokens, leaving at
    // least one sequence for each remaining part.
    const size_t remaining_parts = parts - out.size();
    if (!out.back().sequences.empty() && remaining_parts > 0 &&
        (taken * parts >= total * out.size() || num_seqs - s == remaining_parts)) {
      out.emplace_back();
    }
    ForwardBatch& mb = out.back();
    mb.sequences.push_back(seq);
    mb.token_ids.insert(mb.token_ids.end(), batch.token_ids.begin() + static_cast<int64_t>(token),
                        batch.token_ids.begin() + static_cast<int64_t>(token + seq.num_new_tokens));
    token += static_cast<size_t>(seq.num_new_tokens);
    taken += static_cast<size_t>(seq.num_new_tokens);
  }
  return out;
}

}  // namespace strata
