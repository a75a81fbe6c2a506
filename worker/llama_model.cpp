#include "worker/llama_model.h"

#include <chrono>
#include <cmath>
#include <cstring>

#include "common/check.h"

namespace strata {

LlamaModel::LlamaModel(const ModelConfig& config, const ModelWeights& weights,
                       const kernels::KernelBackend& backend, ParallelContext* parallel)
    : config_(config),
      weights_(weights),
      backend_(backend),
      inv_freq_(config.rope_inv_freq()),
      parallel_(parallel) {
  // Packed weights need the backend that packed them (pack_weights picks the layout).
  STRATA_CHECK((weights.matrix_layout == kernels::WeightLayout::kRowMajor &&
                weights.lm_head_layout == kernels::WeightLayout::kRowMajor) ||
               backend.pack_weights != nullptr);
}

void LlamaModel::ensure_workspace(int64_t num_tokens) {
  if (num_tokens <= workspace_tokens_) return;
  workspace_tokens_ = num_tokens;
  const ShardPlan& sh = weights_.shard;
  const int hd = config_.head_dim;
  const auto n = static_cast<size_t>(num_tokens);
  const auto h = static_cast<size_t>(config_.hidden_size);
  x_.resize(n * h);
  x_norm_.resize(n * h);
  partial_.resize(n * h);
  qkv_.resize(n * static_cast<size_t>(sh.q_size(hd) + 2 * sh.kv_size(hd)));
  attn_.resize(n * static_cast<size_t>(sh.q_size(hd)));
  gate_up_.resize(n * 2 * static_cast<size_t>(sh.ffn_size()));
  act_.resize(n * static_cast<size_t>(sh.ffn_size()));
  positions_.resize(n);
  slots_.resize(n);
  local_ids_.resize(n);
}

void LlamaModel::all_reduce(float* data, size_t count) {
  const auto t0 = std::chrono::steady_clock::now();
  parallel_->tp->all_reduce_sum(data, count);
  collective_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Vocab-parallel embedding: each TP rank looks up the ids in its vocabulary rows, writes
// zeros for the others, and one all-reduce assembles the rows (exactly: one rank adds a
// non-zero per element).
void LlamaModel::embed(const ForwardBatch& batch, int64_t num_tokens) {
  const ShardPlan& sh = weights_.shard;
  const int64_t h = config_.hidden_size;
  for (int64_t i = 0; i < num_tokens; ++i) {
    const int64_t local = batch.token_ids[static_cast<size_t>(i)] - sh.vocab_begin;
    local_ids_[static_cast<size_t>(i)] = local >= 0 && local < sh.vocab_rows ? static_cast<int32_t>(local) : 0;
  }
  backend_.embedding({.ids = local_ids_.data(), .table = weights_.embedding.raw(),
                      .table_dtype = weights_.embedding.dtype(),
                      .table_layout = weights_.embedding_layout,
                      .table_rows = weights_.embedding.dim(0), .out = x_.data(),
                      .t = num_tokens, .dim = h});
  if (sh.tp_size == 1) return;
  for (int64_t i = 0; i < num_tokens; ++i) {
    const int64_t local = batch.token_ids[static_cast<size_t>(i)] - sh.vocab_begin;
    if (local < 0 || local >= sh.vocab_rows) std::memset(x_.data() + i * h, 0, sizeof(float) * static_cast<size_t>(h));
  }
  all_reduce(x_.data(), static_cast<size_t>(num_tokens * h));
}

// Vocab-parallel LM head: each TP rank computes its vocabulary rows' logits; an all-gather
// and a transpose give every rank the whole rows, padding dropped.
void LlamaModel::lm_head(int64_t rows, std::vector<float>& logits) {
  const ShardPlan& sh = weights_.shard;
  const int64_t h = config_.hidden_size, vocab = config_.vocab_size;
  logits.resize(static_cast<size_t>(rows * vocab));
  if (rows == 0) return;
  const bool sharded = sh.tp_size > 1;
  if (sharded) logits_local_.resize(static_cast<size_t>(rows * sh.vocab_rows));
  float* out = sharded ? logits_local_.data() : logits.data();
  backend_.gemm({.x = x_norm_.data(), .ldx = h, .w = weights_.lm_head.raw(),
                 .w_dtype = weights_.lm_head.dtype(), .w_layout = weights_.lm_head_layout,
                 .bias = nullptr, .y = out,
                 .ldy = sh.vocab_rows, .m = rows, .n = sh.vocab_rows, .k = h, .accumulate = false});
  if (!sharded) return;
  logits_gathered_.resize(static_cast<size_t>(rows * sh.vocab_rows * sh.tp_size));
  const auto t0 = std::chrono::steady_clock::now();
  parallel_->tp->all_gather(logits_local_.data(), logits_local_.size(), logits_gathered_.data());
  collective_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int rank = 0; rank < sh.tp_size; ++rank) {
    const int64_t begin = rank * sh.vocab_rows;
    const int64_t n = std::min(sh.vocab_rows, vocab - begin);
    if (n <= 0) continue;
    for (int64_t r = 0; r < rows; ++r) {
      const float* src = logits_gathered_.data() + (rank * rows + r) * sh.vocab_rows;
      std::memcpy(logits.data() + r * vocab + begin, src, sizeof(float) * static_cast<size_t>(n));
    }
  }
}

void LlamaModel::forward(const ForwardBatch& batch, KvCache& cache, std::vector<float>& logits) {
  const ShardPlan& sh = weights_.shard;
  const int hd = config_.head_dim;
  const int64_t num_tokens = static_cast<int64_t>(batch.token_ids.size());
  const int64_t h = config_.hidden_size, q = sh.q_size(hd), kv = sh.kv_size(hd);
  const int64_t ffn = sh.ffn_size(), qkv_width = q + 2 * kv;
  const int block_size = cache.block_size();
  const bool tensor_parallel = sh.tp_size > 1;
  collective_seconds_ = 0;
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

  // The first stage embeds; later stages receive the previous stage's activations.
  if (sh.first_stage) {
    embed(batch, num_tokens);
  } else {
    parallel_->world->recv(x_.data(), sizeof(float) * static_cast<size_t>(num_tokens * h),
                           parallel_->topology.prev_stage_rank());
  }

  auto gemm = [&](const float* x, int64_t ldx, const Tensor& w, const float* bias, float* y,
                  int64_t ldy, bool accumulate) {
    backend_.gemm({.x = x, .ldx = ldx, .w = w.raw(), .w_dtype = w.dtype(),
                   .w_layout = weights_.matrix_layout, .bias = bias, .y = y,
                   .ldy = ldy, .m = num_tokens, .n = w.dim(0), .k = w.dim(1),
                   .accumulate = accumulate});
  };
  auto rmsnorm = [&](const float* x, const Tensor& weight, float* out, int64_t m) {
    backend_.rmsnorm({.x = x, .ldx = h, .weight = weight.data<float>(), .out = out, .ldo = h,
                      .m = m, .n = h, .eps = config_.rms_norm_eps});
  };
  // Row-parallel projections: one rank adds straight into the residual; with TP each adds
  // its partial sum after an all-reduce.
  auto row_parallel = [&](const float* x, int64_t ldx, const Tensor& w) {
    if (!tensor_parallel) return gemm(x, ldx, w, nullptr, x_.data(), h, true);
    gemm(x, ldx, w, nullptr, partial_.data(), h, false);
    all_reduce(partial_.data(), static_cast<size_t>(num_tokens * h));
    for (int64_t i = 0; i < num_tokens * h; ++i) x_[static_cast<size_t>(i)] += partial_[static_cast<size_t>(i)];
  };

  const auto attention_scale = static_cast<float>(1.0 / std::sqrt(double(hd)));
  for (int l = 0; l < sh.num_layers(); ++l) {
    const LayerWeights& w = weights_.layers[static_cast<size_t>(l)];
    rmsnorm(x_.data(), w.attn_norm, x_norm_.data(), num_tokens);
    gemm(x_norm_.data(), h, w.wqkv, w.bqkv.defined() ? w.bqkv.data<float>() : nullptr,
         qkv_.data(), qkv_width, false);
    float* q_ptr = qkv_.data();
    float* k_ptr = qkv_.data() + q;
    float* v_ptr = qkv_.data() + q + kv;
    backend_.rope({.q = q_ptr, .q_stride = qkv_width, .k = k_ptr, .k_stride = qkv_width,
                   .positions = positions_.data(), .inv_freq = inv_freq_.data(), .t = num_tokens,
                   .num_q_heads = sh.num_heads, .num_kv_heads = sh.num_kv_heads, .head_dim = hd});
    backend_.kv_cache_write({.k = k_ptr, .v = v_ptr, .k_stride = qkv_width, .v_stride = qkv_width,
                             .k_cache = cache.k(l), .v_cache = cache.v(l),
                             .slot_mapping = slots_.data(), .t = num_tokens,
                             .num_kv_heads = sh.num_kv_heads, .head_dim = hd,
                             .block_size = block_size});
    kernels::PagedAttentionParams attention{
        .q = q_ptr, .q_stride = qkv_width, .k_cache = cache.k(l), .v_cache = cache.v(l),
        .out = attn_.data(), .out_stride = q, .num_q_heads = sh.num_heads,
        .num_kv_heads = sh.num_kv_heads, .head_dim = hd, .block_size = block_size,
        .scale = attention_scale};
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
    row_parallel(attn_.data(), q, w.wo);
    rmsnorm(x_.data(), w.ffn_norm, x_norm_.data(), num_tokens);
    gemm(x_norm_.data(), h, w.w_gate_up, nullptr, gate_up_.data(), 2 * ffn, false);
    backend_.silu_mul({.gate_up = gate_up_.data(), .ld_in = 2 * ffn, .out = act_.data(),
                       .ld_out = ffn, .t = num_tokens, .f = ffn});
    row_parallel(act_.data(), ffn, w.w_down);
  }

  if (!sh.last_stage) {
    parallel_->world->send(x_.data(), sizeof(float) * static_cast<size_t>(num_tokens * h),
                           parallel_->topology.next_stage_rank());
    logits.clear();
    return;
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
  lm_head(num_logit_rows, logits);
}

}  // namespace strata
