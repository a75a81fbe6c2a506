// StepInputs: the per-step metadata of a forward pass — token ids, positions, KV-cache
// slots, the rows whose logits are wanted, and the block tables attention reads — laid out
// on the host as one buffer that is uploaded to the model's device once per step. Two
// layouts:
//   - eager (StepInputs): exactly this step's tokens and sequences, any mix of prefill
//     chunks and decode tokens;
//   - padded decode (PaddedDecodeLayout): a decode-only batch padded to a CUDA-graph bucket
//     in fixed-size regions, so that a captured graph finds every input at the same device
//     address each step. Padding rows run token 0 at position 0 with no KV write (slot -1)
//     and attend to one position of a scratch block no sequence owns; their outputs are
//     ignored.
// Plain host code: the device only ever sees the bytes built here.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kernels/ops.h"

namespace strata {

struct ForwardBatch;

class StepInputs {
 public:
  // Lays out `batch`; block_table pointers stay unset until bind().
  void build(const ForwardBatch& batch, int block_size);
  // Points each sequence's block_table into `device_words`, the device copy of words().
  void bind(const int32_t* device_words);

  // [token_ids | positions | slots | logit_rows | block tables, one after another]
  const std::vector<int32_t>& words() const { return words_; }
  int64_t num_tokens() const { return num_tokens_; }
  int64_t num_logit_rows() const { return num_logit_rows_; }
  // Word offsets of the regions in words().
  int64_t positions_at() const { return num_tokens_; }
  int64_t slots_at() const { return 2 * num_tokens_; }
  int64_t logit_rows_at() const { return 3 * num_tokens_; }
  // Sequences of one decode token and the rest (prefill chunks), in batch order: the two
  // attention kernels' inputs. Query rows index the concatenated tokens either way.
  std::span<const kernels::AttentionSequence> decode_seqs() const { return decode_seqs_; }
  std::span<const kernels::AttentionSequence> prefill_seqs() const { return prefill_seqs_; }

 private:
  std::vector<int32_t> words_;
  int64_t num_tokens_ = 0, num_logit_rows_ = 0;
  std::vector<kernels::AttentionSequence> decode_seqs_, prefill_seqs_;
  std::vector<int64_t> decode_tables_at_, prefill_tables_at_;  // word offsets of each table
};

// The fixed device buffer a padded (graph-captured) decode step reads, in bytes:
//   seqs        AttentionSequence[capacity]  (block_table: device pointers into `tables`)
//   token_ids   int32[capacity]
//   positions   int32[capacity]
//   slots       int32[capacity]
//   logit_rows  int32[capacity]              (0, 1, ...: every row's logits)
//   tables      int32[capacity][max_blocks_per_seq]
// Each region starts on a 16-byte boundary.
struct PaddedDecodeLayout {
  int capacity = 0;            // rows: the largest bucket
  int max_blocks_per_seq = 0;  // ceil(max_model_len / block_size)
  int64_t seqs_at = 0, token_ids_at = 0, positions_at = 0, slots_at = 0, logit_rows_at = 0;
  int64_t tables_at = 0, total_bytes = 0;

  static PaddedDecodeLayout make(int capacity, int max_blocks_per_seq);
  // Bytes a step of `bucket` rows reads: everything up to the end of its tables' rows.
  int64_t bytes_for(int bucket) const {
    return tables_at + int64_t{bucket} * max_blocks_per_seq * 4;
  }
};

// Whether `batch` can run as a padded decode step: at most capacity sequences, each one
// decode token that wants its logits, with a context of at most max_context_len positions
// and a block table that fits its row.
bool fits_padded_decode(const ForwardBatch& batch, const PaddedDecodeLayout& layout,
                        int max_context_len);

// Writes rows [0, bucket) of the padded inputs into `staging` (resized to total_bytes; rows
// past `bucket` keep what they held): the batch's sequences, then padding rows reading
// `scratch_block`. Block table pointers are `device_base` (the device buffer's address)
// plus their offset, so staging holds the device buffer's contents byte for byte.
// Precondition: fits_padded_decode(batch, layout, ...) and batch size <= bucket <= capacity.
void fill_padded_decode(const PaddedDecodeLayout& layout, const ForwardBatch& batch, int bucket,
                        int block_size, int32_t scratch_block, const void* device_base,
                        std::vector<unsigned char>& staging);

}  // namespace strata
