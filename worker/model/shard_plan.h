// ShardPlan: which slice of the model one rank of a tp × pp worker group holds (Megatron
// style). Query heads, and the gate/up rows of the MLP, are split across the TP ranks
// (column parallel); the O and down projections take the matching input columns (row
// parallel, one all-reduce each); the embedding and LM head are split by vocabulary rows,
// padded to a multiple of tp. KV heads are split when tp ≤ n_kv (n_kv % tp == 0) and
// replicated when tp > n_kv (tp % n_kv == 0). Pipeline stages take contiguous layers.
#pragma once

#include <cstdint>

#include "common/status.h"
#include "parallel/topology.h"
#include "worker/model/model_config.h"

namespace strata {

struct ShardPlan {
  int tp_rank = 0;
  int tp_size = 1;
  LayerRange layers;          // this stage's layers [begin, end)
  bool first_stage = true;    // embeds the tokens
  bool last_stage = true;     // final norm and LM head
  int num_heads = 0;          // local query heads
  int num_kv_heads = 0;       // local KV heads
  int kv_head_begin = 0;      // first global KV head held
  int64_t ffn_begin = 0, ffn_end = 0;  // local MLP columns
  int64_t vocab_begin = 0;    // first global vocab row held
  int64_t vocab_rows = 0;     // local rows, padding included (same on every rank)

  int64_t ffn_size() const { return ffn_end - ffn_begin; }
  int64_t q_size(int head_dim) const { return int64_t{num_heads} * head_dim; }
  int64_t kv_size(int head_dim) const { return int64_t{num_kv_heads} * head_dim; }
  int num_layers() const { return layers.end - layers.begin; }

  // The whole model on one rank.
  static ShardPlan full(const ModelConfig& config);
  // Checks that `config` splits this way; the message says which dimension does not and
  // which degrees would work.
  static StatusOr<ShardPlan> make(const ModelConfig& config, const Topology& topology);
};

}  // namespace strata
