#include "worker/model/shard_plan.h"

namespace strata {

ShardPlan ShardPlan::full(const ModelConfig& c) {
  ShardPlan p;
  p.layers = {0, c.num_layers};
  p.num_heads = c.num_heads;
  p.num_kv_heads = c.num_kv_heads;
  p.ffn_end = c.intermediate_size;
  p.vocab_rows = c.vocab_size;
  return p;
}

StatusOr<ShardPlan> ShardPlan::make(const ModelConfig& c, const Topology& t) {
  const int tp = t.tp;
  if (c.num_heads % tp != 0) {
    return invalid_argument("{}: {} attention heads cannot be split over --tp {}; use a tp that "
                            "divides {}", c.name, c.num_heads, tp, c.num_heads);
  }
  if (tp <= c.num_kv_heads ? c.num_kv_heads % tp != 0 : tp % c.num_kv_heads != 0) {
    return invalid_argument("{}: {} KV heads cannot be shared by --tp {}: tp must divide the KV "
                            "heads or be a multiple of them", c.name, c.num_kv_heads, tp);
  }
  if (t.pp > c.num_layers) {
    return invalid_argument("{}: --pp {} exceeds the {} layers", c.name, t.pp, c.num_layers);
  }
  ShardPlan p;
  p.tp_rank = t.tp_rank();
  p.tp_size = tp;
  p.layers = stage_layers(c.num_layers, t.pp, t.pp_stage());
  p.first_stage = t.is_first_stage();
  p.last_stage = t.is_last_stage();
  p.num_heads = c.num_heads / tp;
  if (tp <= c.num_kv_heads) {
    p.num_kv_heads = c.num_kv_heads / tp;
    p.kv_head_begin = p.tp_rank * p.num_kv_heads;
  } else {
    p.num_kv_heads = 1;
    p.kv_head_begin = p.tp_rank / (tp / c.num_kv_heads);
  }
  p.ffn_begin = c.intermediate_size * p.tp_rank / tp;
  p.ffn_end = c.intermediate_size * (p.tp_rank + 1) / tp;
  p.vocab_rows = (c.vocab_size + tp - 1) / tp;
  p.vocab_begin = p.vocab_rows * p.tp_rank;
  return p;
}

}  // namespace strata
