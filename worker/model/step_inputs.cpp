#include "worker/model/step_inputs.h"

#include <algorithm>
#include <cstring>

#include "common/check.h"
#include "worker/model/llama_model.h"

namespace strata {
namespace {

constexpr int64_t align16(int64_t bytes) { return (bytes + 15) / 16 * 16; }

int32_t slot_of(std::span<const int32_t> table, int32_t pos, int block_size) {
  return table[static_cast<size_t>(pos / block_size)] * block_size + pos % block_size;
}

}  // namespace

void StepInputs::build(const ForwardBatch& batch, int block_size) {
  num_tokens_ = static_cast<int64_t>(batch.token_ids.size());
  num_logit_rows_ = 0;
  int64_t table_words = 0;
  for (const ForwardSequence& s : batch.sequences) {
    table_words += static_cast<int64_t>(s.block_table.size());
    STRATA_CHECK(s.num_logit_rows >= 0 && s.num_logit_rows <= std::max(s.num_new_tokens, 0));
    num_logit_rows_ += s.num_logit_rows;
  }
  words_.resize(static_cast<size_t>(3 * num_tokens_ + num_logit_rows_ + table_words));
  std::copy(batch.token_ids.begin(), batch.token_ids.end(), words_.begin());
  decode_seqs_.clear();
  prefill_seqs_.clear();
  decode_tables_at_.clear();
  prefill_tables_at_.clear();
  int32_t* positions = words_.data() + positions_at();
  int32_t* slots = words_.data() + slots_at();
  int32_t* logit_rows = words_.data() + logit_rows_at();
  int64_t table_at = logit_rows_at() + num_logit_rows_;
  int64_t row = 0;
  for (const ForwardSequence& s : batch.sequences) {
    const int64_t context = int64_t{s.num_computed_tokens} + s.num_new_tokens;
    STRATA_CHECK(static_cast<int64_t>(s.block_table.size()) * block_size >= context);
    for (int32_t j = 0; j < s.num_new_tokens; ++j) {
      const int32_t pos = s.num_computed_tokens + j;
      positions[row + j] = pos;
      slots[row + j] = slot_of(s.block_table, pos, block_size);
    }
    std::copy(s.block_table.begin(), s.block_table.end(), words_.begin() + table_at);
    const bool decode = s.num_new_tokens == 1;
    (decode ? decode_seqs_ : prefill_seqs_)
        .push_back({.query_start = static_cast<int32_t>(row), .num_queries = s.num_new_tokens,
                    .context_len = static_cast<int32_t>(context)});
    (decode ? decode_tables_at_ : prefill_tables_at_).push_back(table_at);
    table_at += static_cast<int64_t>(s.block_table.size());
    row += s.num_new_tokens;
    for (int32_t j = s.num_logit_rows; j > 0; --j) *logit_rows++ = static_cast<int32_t>(row - j);
  }
  STRATA_CHECK(row == num_tokens_);
}

void StepInputs::bind(const int32_t* device_words) {
  for (size_t i = 0; i < decode_seqs_.size(); ++i) {
    decode_seqs_[i].block_table = device_words + decode_tables_at_[i];
  }
  for (size_t i = 0; i < prefill_seqs_.size(); ++i) {
    prefill_seqs_[i].block_table = device_words + prefill_tables_at_[i];
  }
}

PaddedDecodeLayout PaddedDecodeLayout::make(int capacity, int max_blocks_per_seq) {
  STRATA_CHECK(capacity >= 1 && max_blocks_per_seq >= 1);
  PaddedDecodeLayout l{.capacity = capacity, .max_blocks_per_seq = max_blocks_per_seq};
  const int64_t column = align16(int64_t{capacity} * 4);  // one int32 per row
  l.seqs_at = 0;
  l.token_ids_at = align16(int64_t{capacity} * sizeof(kernels::AttentionSequence));
  l.positions_at = l.token_ids_at + column;
  l.slots_at = l.positions_at + column;
  l.logit_rows_at = l.slots_at + column;
  l.tables_at = l.logit_rows_at + column;
  l.total_bytes = l.bytes_for(capacity);
  return l;
}

bool fits_padded_decode(const ForwardBatch& batch, const PaddedDecodeLayout& layout,
                        int max_context_len) {
  if (batch.sequences.empty() || static_cast<int64_t>(batch.sequences.size()) > layout.capacity) {
    return false;
  }
  for (const ForwardSequence& s : batch.sequences) {
    if (s.num_new_tokens != 1 || s.num_logit_rows != 1) return false;
    if (s.num_computed_tokens + 1 > max_context_len) return false;
    if (static_cast<int64_t>(s.block_table.size()) > layout.max_blocks_per_seq) return false;
  }
  return true;
}

void fill_padded_decode(const PaddedDecodeLayout& layout, const ForwardBatch& batch, int bucket,
                        int block_size, int32_t scratch_block, const void* device_base,
                        std::vector<unsigned char>& staging) {
  const auto batch_size = static_cast<int>(batch.sequences.size());
  STRATA_CHECK(batch_size <= bucket && bucket <= layout.capacity);
  STRATA_CHECK(static_cast<int>(batch.token_ids.size()) == batch_size);
  staging.resize(static_cast<size_t>(layout.total_bytes));
  // Plain bytes written with memcpy: the buffer holds no C++ objects, only what the device
  // will read.
  auto put = [&](int64_t at, const auto& value) {
    std::memcpy(staging.data() + at, &value, sizeof value);
  };
  const int64_t row_bytes = int64_t{layout.max_blocks_per_seq} * 4;
  for (int i = 0; i < bucket; ++i) {
    const int64_t table_at = layout.tables_at + i * row_bytes;
    kernels::AttentionSequence seq{
        .query_start = i, .num_queries = 1, .context_len = 1,
        .block_table = reinterpret_cast<const int32_t*>(
            static_cast<const unsigned char*>(device_base) + table_at)};
    int32_t token = 0, pos = 0, slot = -1;
    if (i < batch_size) {
      const ForwardSequence& s = batch.sequences[static_cast<size_t>(i)];
      token = batch.token_ids[static_cast<size_t>(i)];
      pos = s.num_computed_tokens;
      slot = slot_of(s.block_table, pos, block_size);
      seq.context_len = pos + 1;
      std::memcpy(staging.data() + table_at, s.block_table.data(), s.block_table.size_bytes());
    } else {
      put(table_at, scratch_block);
    }
    put(layout.seqs_at + i * int64_t{sizeof seq}, seq);
    put(layout.token_ids_at + i * 4, token);
    put(layout.positions_at + i * 4, pos);
    put(layout.slots_at + i * 4, slot);
    put(layout.logit_rows_at + i * 4, i);
  }
}

}  // namespace strata
