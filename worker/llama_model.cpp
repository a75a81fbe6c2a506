#include "worker/llama_model.h"

#include <cmath>

#include "common/check.h"

namespace strata {

LlamaModel::LlamaModel(const ModelConfig& config, const ModelWeights& weights,
                       const kernels::KernelBackend& backend)
    : config_(config), weights_(weights), backend_(backend), inv_freq_(config.rope_inv_freq()) {}

void LlamaModel::ensure_workspace(int64_t num_tokens) {
  if (num_tokens <= workspace_tokens_) return;
  workspace_tokens_ = num_tokens;
  const auto n = static_cast<size_t>(num_tokens);
  const auto h = static_cast<size_t>(config_.hidden_size);
  x_.resize(n * h);
  x_norm_.resize(n * h);
  qkv_.resize(n * static_cast<size_t>(config_.q_size() + 2 * config_.kv_size()));
  attn_.resize(n * static_cast<size_t>(config_.q_size()));
  gate_up_.resize(n * 2 * static_cast<size_t>(config_.intermediate_size));
  act_.resize(n * static_cast<size_t>(config_.intermediate_size));
  positions_.resize(n);
  slots_.resize(n);
}

void LlamaModel::forward(const ForwardBatch& batch, KvCache& cache, std::vector<float>& logits) {
  const int64_t num_tokens = static_cast<int64_t>(batch.token_ids.size());
  const int64_t h = config_.hidden_size, q = config_.q_size(), kv = config_.kv_size();
  const int64_t ffn = config_.intermediate_size, qkv_width = q + 2 * kv;
  const int block_size = cache.block_size();
  ensure_workspace(num_tokens);

  // Where each token sits: its position, its cache slot, and each sequence's query rows.
  // Decode tokens (one new token) go to the decode attention kernel, the rest (prefill
  // chunks) to the general one; both produce the same bits per row, so the split never
  // changes a token's output. Query rows index the concatenated tokens either way.
  std::vector<kernels::AttentionSequence> decode_seqs, prefill_seqs;
  int64_t row = 0;
  for (const ForwardSequence& s : batch.sequences) {
    const int64_t context = int64_t{s.num_computed_tokens} + s.num_new_tokens;
    STRATA_CHECK(static_cast<int64_t>(s.block_table.size()) * block_size >= context);
    for (int32_t j = 0; j < s.num_new_tokens; ++j) {
      const int32_t pos = s.num_computed_tokens + j;
      positions_[row + j] = pos;
      slots_[row + j] = s.block_table[pos / block_size] * block_size + pos % block_size;
    }
    (s.num_new_tokens == 1 ? decode_seqs : prefill_seqs)
        .push_back({.query_start = static_cast<int32_t>(row), .num_queries = s.num_new_tokens,
                    .context_len = static_cast<int32_t>(context),
                    .block_table = s.block_table.data()});
    row += s.num_new_tokens;
  }
  STRATA_CHECK(row == num_tokens);

  backend_.embedding({.ids = batch.token_ids.data(), .table = weights_.embedding.raw(),
                      .table_dtype = weights_.embedding.dtype(), .out = x_.data(),
                      .t = num_tokens, .dim = h});

  auto gemm = [&](const float* x, int64_t ldx, const Tensor& w, const float* bias, float* y,
                  int64_t ldy, bool accumulate) {
    backend_.gemm({.x = x, .ldx = ldx, .w = w.raw(), .w_dtype = w.dtype(), .bias = bias, .y = y,
                   .ldy = ldy, .m = num_tokens, .n = w.dim(0), .k = w.dim(1),
                   .accumulate = accumulate});
  };
  auto rmsnorm = [&](const float* x, const Tensor& weight, float* out, int64_t m) {
    backend_.rmsnorm({.x = x, .ldx = h, .weight = weight.data<float>(), .out = out, .ldo = h,
                      .m = m, .n = h, .eps = config_.rms_norm_eps});
  };

  const auto attention_scale = static_cast<float>(1.0 / std::sqrt(double(config_.head_dim)));
  for (int l = 0; l < config_.num_layers; ++l) {
    const LayerWeights& w = weights_.layers[static_cast<size_t>(l)];
    rmsnorm(x_.data(), w.attn_norm, x_norm_.data(), num_tokens);
    gemm(x_norm_.data(), h, w.wqkv, w.bqkv.defined() ? w.bqkv.data<float>() : nullptr,
         qkv_.data(), qkv_width, false);
    float* q_ptr = qkv_.data();
    float* k_ptr = qkv_.data() + q;
    float* v_ptr = qkv_.data() + q + kv;
    backend_.rope({.q = q_ptr, .q_stride = qkv_width, .k = k_ptr, .k_stride = qkv_width,
                   .positions = positions_.data(), .inv_freq = inv_freq_.data(), .t = num_tokens,
                   .num_q_heads = config_.num_heads, .num_kv_heads = config_.num_kv_heads,
                   .head_dim = config_.head_dim});
    backend_.kv_cache_write({.k = k_ptr, .v = v_ptr, .k_stride = qkv_width, .v_stride = qkv_width,
                             .k_cache = cache.k(l), .v_cache = cache.v(l),
                             .slot_mapping = slots_.data(), .t = num_tokens,
                             .num_kv_heads = config_.num_kv_heads, .head_dim = config_.head_dim,
                             .block_size = block_size});
    kernels::PagedAttentionParams attention{
        .q = q_ptr, .q_stride = qkv_width, .k_cache = cache.k(l), .v_cache = cache.v(l),
        .out = attn_.data(), .out_stride = q, .num_q_heads = config_.num_heads,
        .num_kv_heads = config_.num_kv_heads, .head_dim = config_.head_dim,
        .block_size = block_size, .scale = attention_scale};
    if (!decode_seqs.empty()) {
      attention.seqs = decode_seqs.data();
      attention.num_seqs = static_cast<int>(decode_seqs.size());
      backend_.decode_attention(attention);
    }
    if (!prefill_seqs.empty()) {
      attention.seqs = prefill_seqs.data();
      attention.num_seqs = static_cast<int>(prefill_seqs.size());
      backend_.paged_attention(attention);
    }
    gemm(attn_.data(), q, w.wo, nullptr, x_.data(), h, true);
    rmsnorm(x_.data(), w.ffn_norm, x_norm_.data(), num_tokens);
    gemm(x_norm_.data(), h, w.w_gate_up, nullptr, gate_up_.data(), 2 * ffn, false);
    backend_.silu_mul({.gate_up = gate_up_.data(), .ld_in = 2 * ffn, .out = act_.data(),
                       .ld_out = ffn, .t = num_tokens, .f = ffn});
    gemm(act_.data(), ffn, w.w_down, nullptr, x_.data(), h, true);
  }

  // Only the rows whose logits are wanted go through the final norm and the LM head.
  int64_t num_logit_rows = 0;
  row = 0;
  for (const ForwardSequence& s : batch.sequences) {
    row += s.num_new_tokens;
    if (!s.want_logits || s.num_new_tokens == 0) continue;
    const float* last = x_.data() + (row - 1) * h;
    std::copy(last, last + h, x_norm_.data() + num_logit_rows * h);
    ++num_logit_rows;
  }
  rmsnorm(x_norm_.data(), weights_.final_norm, x_norm_.data(), num_logit_rows);
  logits.resize(static_cast<size_t>(num_logit_rows * config_.vocab_size));
  if (num_logit_rows == 0) return;
  backend_.gemm({.x = x_norm_.data(), .ldx = h, .w = weights_.lm_head.raw(),
                 .w_dtype = weights_.lm_head.dtype(), .bias = nullptr, .y = logits.data(),
                 .ldy = config_.vocab_size, .m = num_logit_rows, .n = config_.vocab_size, .k = h,
                 .accumulate = false});
}

}  // namespace strata
