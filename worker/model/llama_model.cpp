#include "worker/model/llama_model.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "common/check.h"
#include "kernels/device.h"
#include "kernels/device_plan.h"

namespace strata {

using kernels::CopyKind;

struct LlamaModel::Padded {
  PaddedDecodeConfig config;
  PaddedDecodeLayout layout;
  KvCache* cache = nullptr;  // the cache padded steps (and their graphs) write
  Tensor inputs;             // [layout.total_bytes] on the device, read by padded steps
  std::vector<unsigned char> staging;
  std::unique_ptr<DecodeGraphRunner> graphs;  // null: padded steps run eagerly
  // workspace_generation_ the graphs were captured at; -1: recapture before replaying.
  int64_t graphs_generation = -1;
};

LlamaModel::LlamaModel(const ModelConfig& config, const ModelWeights& weights,
                       const kernels::KernelBackend& backend, ParallelContext* parallel)
    : config_(config),
      weights_(weights),
      backend_(backend),
      device_(weights.device),
      parallel_(parallel) {
  // Packed weights need the backend that packed them (pack_weights picks the layout).
  STRATA_CHECK(weights.lm_head.layout == kernels::WeightLayout::kRowMajor ||
               backend.pack_weights != nullptr);
  const std::vector<double> inv_freq = config.rope_inv_freq();
  const auto bytes = static_cast<int64_t>(inv_freq.size() * sizeof(double));
  inv_freq_ = Tensor::empty(DType::kU8, {bytes}, device_);
  backend_.copy({.dst = inv_freq_.raw(), .src = inv_freq.data(), .row_bytes = bytes,
                 .kind = CopyKind::kHostToDevice});
  backend_.synchronize();
}

LlamaModel::~LlamaModel() = default;

int64_t LlamaModel::workspace_bytes(const ModelConfig& config, const ShardPlan& sh,
                                    int64_t max_tokens, int64_t max_logit_rows) {
  const int hd = config.head_dim;
  // x, x_norm, partial | qkv | attn | gate_up, act
  const int64_t per_token = 3 * config.hidden_size + sh.q_size(hd) + 2 * sh.kv_size(hd) +
                            sh.q_size(hd) + 3 * sh.ffn_size();
  const int64_t per_logit_row = sh.vocab_rows * (sh.tp_size > 1 ? 1 + sh.tp_size : 1);
  // Step metadata: four words per token, plus block tables and padded-decode inputs.
  constexpr int64_t kMetadataSlack = int64_t{1} << 20;
  return 4 * (max_tokens * (per_token + 4) + max_logit_rows * per_logit_row) + kMetadataSlack;
}

void LlamaModel::ensure_workspace(int64_t num_tokens, int64_t num_logit_rows) {
  const ShardPlan& sh = weights_.shard;
  if (num_tokens > workspace_tokens_) {
    workspace_tokens_ = num_tokens;
    ++workspace_generation_;
    const int hd = config_.head_dim;
    auto rows = [&](int64_t width) { return Tensor::empty(DType::kF32, {num_tokens, width}, device_); };
    const int64_t h = config_.hidden_size;
    x_ = rows(h);
    x_norm_ = rows(h);
    if (sh.tp_size > 1) partial_ = rows(h);
    qkv_ = rows(sh.q_size(hd) + 2 * sh.kv_size(hd));
    attn_ = rows(sh.q_size(hd));
    gate_up_ = rows(2 * sh.ffn_size());
    act_ = rows(sh.ffn_size());
    if (weights_.quantization == Quantization::kW8A8) {
      xq_ = Tensor::empty(DType::kI8, {num_tokens, std::max(h, sh.ffn_size())}, device_);
      xq_scale_ = Tensor::empty(DType::kF32, {num_tokens}, device_);
    }
    gemm_workspace_ =
        Tensor::empty(DType::kU8, {std::max<int64_t>(gemm_workspace_bytes(num_tokens), 1)}, device_);
  }
  if (sh.last_stage && num_logit_rows > workspace_logit_rows_) {
    workspace_logit_rows_ = num_logit_rows;
    ++workspace_generation_;
    logits_local_ = Tensor::empty(DType::kF32, {num_logit_rows, sh.vocab_rows}, device_);
    if (sh.tp_size > 1) {
      logits_gathered_ =
          Tensor::empty(DType::kF32, {sh.tp_size * num_logit_rows, sh.vocab_rows}, device_);
    }
  }
}

// The most any one matrix multiply of a step of m tokens needs (every layer has the same
// matrices; the LM head reads the final norm's fp32 rows).
int64_t LlamaModel::gemm_workspace_bytes(int64_t m) const {
  int64_t bytes = 0;
  if (weights_.lm_head.defined()) bytes = matmul_workspace_bytes(backend_, weights_.lm_head, m);
  if (weights_.layers.empty()) return bytes;
  const LayerWeights& l = weights_.layers.front();
  for (const Matrix* w : {&l.wqkv, &l.wo, &l.w_gate_up, &l.w_down}) {
    bytes = std::max(bytes, matmul_workspace_bytes(backend_, *w, m));
  }
  return bytes;
}

void LlamaModel::all_reduce(float* data, size_t count) {
  const auto t0 = std::chrono::steady_clock::now();
  parallel_->tp->all_reduce_sum(data, count);
  collective_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Vocab-parallel embedding: each TP rank looks up the ids in its vocabulary rows, writes
// zeros for the others, and one all-reduce assembles the rows (exactly: one rank adds a
// non-zero per element).
void LlamaModel::embed(const StepArgs& args) {
  const ShardPlan& sh = weights_.shard;
  const int64_t h = config_.hidden_size;
  backend_.embedding({.ids = args.token_ids, .table = weights_.embedding.raw(),
                      .table_dtype = weights_.embedding.dtype(),
                      .table_layout = weights_.embedding_layout,
                      .table_rows = weights_.embedding.dim(0), .id_begin = sh.vocab_begin,
                      .out = x_.data<float>(), .t = args.num_tokens, .dim = h});
  if (sh.tp_size > 1) all_reduce(x_.data<float>(), static_cast<size_t>(args.num_tokens * h));
}

// Vocab-parallel LM head: each TP rank computes its vocabulary rows' logits, and an
// all-gather gives every rank all of them ([rank][row][local vocab]; see
// copy_logits_to_host for the transpose).
// The final norm of the gathered rows (in x_norm_) as the LM head multiplies them, then the
// LM head.
void LlamaModel::lm_head(int64_t rows) {
  const ShardPlan& sh = weights_.shard;
  const int64_t h = config_.hidden_size;
  if (rows == 0) return;
  float* x_norm = x_norm_.data<float>();
  MatrixInput in{.x = x_norm, .ldx = h};
  if (weights_.lm_head.scheme == Quantization::kW8A8) {
    backend_.rmsnorm_quant({.x = x_norm, .ldx = h, .weight = weights_.final_norm.data<float>(),
                            .out = xq_.data<int8_t>(), .ldo = h, .scale = xq_scale_.data<float>(),
                            .m = rows, .n = h, .eps = config_.rms_norm_eps});
    in = {.xq = xq_.data<int8_t>(), .x_scale = xq_scale_.data<float>(), .ldx = h};
  } else {
    backend_.rmsnorm({.x = x_norm, .ldx = h, .weight = weights_.final_norm.data<float>(),
                      .out = x_norm, .ldo = h, .m = rows, .n = h, .eps = config_.rms_norm_eps});
  }
  matmul(backend_, weights_.lm_head,
         {.in = in, .y = logits_local_.data<float>(), .ldy = sh.vocab_rows, .m = rows,
          .workspace = gemm_workspace_.raw()});
  if (sh.tp_size == 1) return;
  const auto t0 = std::chrono::steady_clock::now();
  parallel_->tp->all_gather(logits_local_.data<float>(), static_cast<size_t>(rows * sh.vocab_rows),
                            logits_gathered_.data<float>());
  collective_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Each rank's block of vocabulary columns lands at its place in the host rows, padding
// columns dropped; then the step's one synchronization.
void LlamaModel::copy_logits_to_host(int64_t rows, std::vector<float>& logits) {
  const ShardPlan& sh = weights_.shard;
  const int64_t vocab = config_.vocab_size;
  logits.resize(static_cast<size_t>(rows * vocab));
  if (rows == 0) {  // no sequence samples this step: the logits buffers may not exist yet
    backend_.synchronize();
    return;
  }
  const float* src = (sh.tp_size > 1 ? logits_gathered_ : logits_local_).data<float>();
  for (int rank = 0; rank < sh.tp_size; ++rank) {
    const int64_t begin = rank * sh.vocab_rows;
    const int64_t n = std::min(sh.vocab_rows, vocab - begin);
    if (n <= 0) continue;
    backend_.copy({.dst = logits.data() + begin, .dst_pitch = vocab * 4,
                   .src = src + rank * rows * sh.vocab_rows, .src_pitch = sh.vocab_rows * 4,
                   .row_bytes = n * 4, .rows = rows, .kind = CopyKind::kDeviceToHost});
  }
  backend_.synchronize();
}

// y = in · Wᵀ (+ bias) (+ y) over the step's tokens.
void LlamaModel::project(int64_t num_tokens, const MatrixInput& in, const Matrix& w,
                         const float* bias, float* y, int64_t ldy, bool accumulate) {
  matmul(backend_, w, {.in = in, .bias = bias, .y = y, .ldy = ldy, .m = num_tokens,
                       .accumulate = accumulate, .workspace = gemm_workspace_.raw()});
}

// RMSNorm of the residual rows as `w` multiplies them: fp32 rows in x_norm_, or for a W8A8
// matrix int8 rows and their scales (the norm and the quantization in one pass).
MatrixInput LlamaModel::normalize_for(const Matrix& w, const Tensor& weight, int64_t rows) {
  const int64_t h = config_.hidden_size;
  if (w.scheme == Quantization::kW8A8) {
    backend_.rmsnorm_quant({.x = x_.data<float>(), .ldx = h, .weight = weight.data<float>(),
                            .out = xq_.data<int8_t>(), .ldo = h, .scale = xq_scale_.data<float>(),
                            .m = rows, .n = h, .eps = config_.rms_norm_eps});
    return {.xq = xq_.data<int8_t>(), .x_scale = xq_scale_.data<float>(), .ldx = h};
  }
  backend_.rmsnorm({.x = x_.data<float>(), .ldx = h, .weight = weight.data<float>(),
                    .out = x_norm_.data<float>(), .ldo = h, .m = rows, .n = h,
                    .eps = config_.rms_norm_eps});
  return {.x = x_norm_.data<float>(), .ldx = h};
}

// SiLU(gate) · up as the down projection multiplies it (fp32 in act_, or int8 rows).
MatrixInput LlamaModel::activate_for(const Matrix& w, int64_t rows) {
  const int64_t ffn = weights_.shard.ffn_size();
  if (w.scheme == Quantization::kW8A8) {
    backend_.silu_mul_quant({.gate_up = gate_up_.data<float>(), .ld_in = 2 * ffn,
                             .out = xq_.data<int8_t>(), .ld_out = ffn,
                             .scale = xq_scale_.data<float>(), .t = rows, .f = ffn});
    return {.xq = xq_.data<int8_t>(), .x_scale = xq_scale_.data<float>(), .ldx = ffn};
  }
  backend_.silu_mul({.gate_up = gate_up_.data<float>(), .ld_in = 2 * ffn,
                     .out = act_.data<float>(), .ld_out = ffn, .t = rows, .f = ffn});
  return {.x = act_.data<float>(), .ldx = ffn};
}

// Row-parallel projections: one rank adds straight into the residual; with TP each adds
// its partial sum after an all-reduce.
void LlamaModel::row_parallel(int64_t num_tokens, const MatrixInput& in, const Matrix& w) {
  const ShardPlan& sh = weights_.shard;
  const int64_t h = config_.hidden_size;
  float* x = x_.data<float>();
  if (sh.tp_size == 1) return project(num_tokens, in, w, nullptr, x, h, true);
  float* partial = partial_.data<float>();
  project(num_tokens, in, w, nullptr, partial, h, false);
  all_reduce(partial, static_cast<size_t>(num_tokens * h));
  backend_.add({.x = partial, .ldx = h, .y = x, .ldy = h, .m = num_tokens, .n = h});
}

// Norm, QKV projection, RoPE, KV-cache write, attention and the output projection (added
// into the residual x_).
void LlamaModel::attention_block(int layer, const StepArgs& args, KvCache& cache) {
  const ShardPlan& sh = weights_.shard;
  const LayerWeights& w = weights_.layers[static_cast<size_t>(layer)];
  const int hd = config_.head_dim;
  const int64_t num_tokens = args.num_tokens;
  const int64_t h = config_.hidden_size, q = sh.q_size(hd), kv = sh.kv_size(hd);
  const int64_t qkv_width = q + 2 * kv;
  float* qkv = qkv_.data<float>();
  project(num_tokens, normalize_for(w.wqkv, w.attn_norm, num_tokens), w.wqkv,
          w.bqkv.defined() ? w.bqkv.data<float>() : nullptr, qkv, qkv_width, false);
  float* q_ptr = qkv;
  float* k_ptr = qkv + q;
  float* v_ptr = qkv + q + kv;
  backend_.rope({.q = q_ptr, .q_stride = qkv_width, .k = k_ptr, .k_stride = qkv_width,
                 .positions = args.positions, .inv_freq = inv_freq_.data<double>(),
                 .t = num_tokens, .num_q_heads = sh.num_heads, .num_kv_heads = sh.num_kv_heads,
                 .head_dim = hd});
  backend_.kv_cache_write({.k = k_ptr, .v = v_ptr, .k_stride = qkv_width, .v_stride = qkv_width,
                           .k_cache = cache.k(layer), .v_cache = cache.v(layer),
                           .cache_dtype = cache.dtype(), .slot_mapping = args.slots, .t = num_tokens,
                           .num_kv_heads = sh.num_kv_heads, .head_dim = hd,
                           .block_size = cache.block_size()});
  attend(layer, cache, q_ptr, qkv_width);
  row_parallel(num_tokens, {.x = attn_.data<float>(), .ldx = q}, w.wo);
}

// Decode tokens (one new token) go to the decode attention kernel, the rest (prefill
// chunks) to the general one; both produce the same bits per row, so the split never
// changes a token's output. Both run the step's plan.
void LlamaModel::attend(int layer, KvCache& cache, const float* q_ptr, int64_t q_stride) {
  const ShardPlan& sh = weights_.shard;
  const int hd = config_.head_dim;
  const kernels::PagedAttentionParams attention{
      .q = q_ptr, .q_stride = q_stride, .k_cache = cache.k(layer), .v_cache = cache.v(layer),
      .cache_dtype = cache.dtype(), .out = attn_.data<float>(), .out_stride = sh.q_size(hd), .plan = &attention_plan_,
      .workspace = attention_workspace_.defined() ? attention_workspace_.raw() : nullptr,
      .num_q_heads = sh.num_heads, .num_kv_heads = sh.num_kv_heads, .head_dim = hd,
      .block_size = cache.block_size(),
      .scale = static_cast<float>(1.0 / std::sqrt(double(hd)))};
  if (attention_plan_.num_decode_seqs > 0) backend_.decode_attention(attention);
  if (attention_plan_.num_prefill_seqs > 0) backend_.paged_attention(attention);
}

// Plans the step's attention (host only; metadata binding is the caller's) and grows the
// attention workspace to the plan's need. Growing moves it, so captured graphs recapture.
void LlamaModel::plan_attention(const StepArgs& args, int block_size) {
  const ShardPlan& sh = weights_.shard;
  const bool on_device = args.num_device_decode_seqs > 0;
  backend_.plan_attention(
      {.decode_seqs = on_device ? nullptr : args.decode_seqs.data(),
       .device_decode_seqs = on_device ? args.device_decode_seqs : nullptr,
       .num_decode_seqs = on_device ? args.num_device_decode_seqs
                                    : static_cast<int>(args.decode_seqs.size()),
       .max_context_len = args.max_context_len,
       .prefill_seqs = args.prefill_seqs.data(),
       .num_prefill_seqs = static_cast<int>(args.prefill_seqs.size()),
       .num_q_heads = sh.num_heads, .num_kv_heads = sh.num_kv_heads,
       .head_dim = config_.head_dim, .block_size = block_size},
      attention_plan_);
  const int64_t need = attention_plan_.workspace_bytes;
  if (need > 0 && (!attention_workspace_.defined() || attention_workspace_.numel() < need)) {
    attention_workspace_ = Tensor::empty(DType::kU8, {need}, device_);
    ++workspace_generation_;
  }
}

// Norm, gate/up projection, SiLU·up and the down projection (added into the residual).
void LlamaModel::mlp_block(int layer, int64_t num_tokens) {
  const LayerWeights& w = weights_.layers[static_cast<size_t>(layer)];
  const int64_t ffn = weights_.shard.ffn_size();
  project(num_tokens, normalize_for(w.w_gate_up, w.ffn_norm, num_tokens), w.w_gate_up, nullptr,
          gate_up_.data<float>(), 2 * ffn, false);
  row_parallel(num_tokens, activate_for(w.w_down, num_tokens), w.w_down);
}

// The last stage takes only the rows whose logits are wanted through the final norm and
// the LM head; the others pass their activations to the next stage.
void LlamaModel::finish(const StepArgs& args) {
  const int64_t h = config_.hidden_size;
  float* x = x_.data<float>();
  float* x_norm = x_norm_.data<float>();
  if (!weights_.shard.last_stage) {
    parallel_->pipeline->send(x, sizeof(float) * static_cast<size_t>(args.num_tokens * h),
                              parallel_->topology.next_stage_rank());
    return;
  }
  backend_.gather_rows({.x = x, .ldx = h, .rows = args.logit_rows, .out = x_norm, .ldo = h,
                        .m = args.num_logit_rows, .n = h});
  lm_head(args.num_logit_rows);
}

void LlamaModel::run(const StepArgs& args, KvCache& cache) {
  const ShardPlan& sh = weights_.shard;
  // The first stage embeds; later stages receive the previous stage's activations.
  if (sh.first_stage) {
    embed(args);
  } else {
    parallel_->pipeline->recv(x_.data<float>(),
                              sizeof(float) * static_cast<size_t>(args.num_tokens * config_.hidden_size),
                              parallel_->topology.prev_stage_rank());
  }
  for (int l = 0; l < sh.num_layers(); ++l) {
    attention_block(l, args, cache);
    mlp_block(l, args.num_tokens);
  }
  finish(args);
}

void LlamaModel::forward(const ForwardBatch& batch, KvCache& cache, std::vector<float>& logits) {
  collective_seconds_ = 0;
  last_step_padded_ = last_step_graphed_ = false;
  if (padded_ != nullptr && padded_->graphs != nullptr) padded_->graphs->bind();
  const bool padded = padded_ != nullptr && &cache == padded_->cache &&
                      fits_padded_decode(batch, padded_->layout, padded_->config.max_model_len) &&
                      forward_padded(batch, cache);
  const int64_t num_logit_rows =
      padded ? static_cast<int64_t>(batch.sequences.size()) : forward_eager(batch, cache);
  if (!weights_.shard.last_stage) {
    logits.clear();
    backend_.synchronize();
    return;
  }
  copy_logits_to_host(num_logit_rows, logits);
}

// The step's one upload: [step words | attention plan metadata]. The metadata region is
// placed from a bound on its size, since the plan copies the sequences after their block
// tables point into the device copy.
int64_t LlamaModel::forward_eager(const ForwardBatch& batch, KvCache& cache) {
  step_inputs_.build(batch, cache.block_size());
  const int64_t num_tokens = step_inputs_.num_tokens();
  const int64_t num_logit_rows = step_inputs_.num_logit_rows();
  ensure_workspace(num_tokens, num_logit_rows);
  const std::vector<int32_t>& words = step_inputs_.words();
  const int64_t words_bytes = (static_cast<int64_t>(words.size()) * 4 + 15) / 16 * 16;
  int64_t prefill_queries = 0;
  for (const auto& s : step_inputs_.prefill_seqs()) prefill_queries += s.num_queries;
  const int64_t total_bytes =
      words_bytes + kernels::attention_metadata_bytes_bound(
                        static_cast<int>(step_inputs_.decode_seqs().size()),
                        static_cast<int>(step_inputs_.prefill_seqs().size()), prefill_queries);
  if (step_words_.numel() * 4 < total_bytes) {
    step_words_ = Tensor::empty(DType::kI32, {std::max(total_bytes / 4, 2 * step_words_.numel())},
                                device_);
  }
  auto* device_base = static_cast<unsigned char*>(step_words_.raw());
  const auto* device_words = reinterpret_cast<const int32_t*>(device_base);
  step_inputs_.bind(device_words);
  const StepArgs args{.token_ids = device_words,
                      .positions = device_words + step_inputs_.positions_at(),
                      .slots = device_words + step_inputs_.slots_at(),
                      .logit_rows = device_words + step_inputs_.logit_rows_at(),
                      .num_tokens = num_tokens, .num_logit_rows = num_logit_rows,
                      .decode_seqs = step_inputs_.decode_seqs(),
                      .prefill_seqs = step_inputs_.prefill_seqs()};
  plan_attention(args, cache.block_size());
  const std::vector<unsigned char>& metadata = attention_plan_.metadata;
  step_staging_.resize(static_cast<size_t>(words_bytes) + metadata.size());
  std::memcpy(step_staging_.data(), words.data(), words.size() * 4);
  std::copy(metadata.begin(), metadata.end(), step_staging_.begin() + words_bytes);
  backend_.copy({.dst = device_base, .src = step_staging_.data(),
                 .row_bytes = static_cast<int64_t>(step_staging_.size()),
                 .kind = CopyKind::kHostToDevice});
  kernels::bind_attention_plan(attention_plan_, device_base + words_bytes);
  run(args, cache);
  return num_logit_rows;
}

LlamaModel::StepArgs LlamaModel::padded_args(int bucket) const {
  const PaddedDecodeLayout& l = padded_->layout;
  const auto* base = static_cast<const unsigned char*>(padded_->inputs.raw());
  auto column = [&](int64_t at) { return reinterpret_cast<const int32_t*>(base + at); };
  return {.token_ids = column(l.token_ids_at), .positions = column(l.positions_at),
          .slots = column(l.slots_at), .logit_rows = column(l.logit_rows_at),
          .num_tokens = bucket, .num_logit_rows = bucket,
          .device_decode_seqs = reinterpret_cast<const kernels::AttentionSequence*>(base + l.seqs_at),
          .num_device_decode_seqs = bucket, .max_context_len = padded_->config.max_model_len};
}

// A padded step's sequences are already on the device, so its plan has no metadata to
// upload.
void LlamaModel::run_padded(int bucket, KvCache& cache) {
  const StepArgs args = padded_args(bucket);
  plan_attention(args, cache.block_size());
  kernels::bind_attention_plan(attention_plan_, nullptr);
  run(args, cache);
}

bool LlamaModel::forward_padded(const ForwardBatch& batch, KvCache& cache) {
  Padded& p = *padded_;
  const std::optional<int> bucket = decode_graph_bucket_for(
      p.config.buckets, static_cast<int>(batch.sequences.size()));
  if (!bucket) return false;
  if (p.graphs != nullptr && p.graphs_generation != workspace_generation_) {
    if (Status st = capture_graphs(cache); !st.ok()) {
      spdlog::warn("recapturing the decode CUDA graphs failed ({}); decode steps run eagerly",
                   st.message());
      p.graphs.reset();
    }
  }
  fill_padded_decode(p.layout, batch, *bucket, cache.block_size(), p.config.scratch_block,
                     p.inputs.raw(), p.staging);
  backend_.copy({.dst = p.inputs.raw(), .src = p.staging.data(),
                 .row_bytes = p.layout.bytes_for(*bucket), .kind = CopyKind::kHostToDevice});
  last_step_padded_ = true;
  last_step_graphed_ = p.graphs != nullptr && p.graphs->replay(*bucket);
  if (!last_step_graphed_) run_padded(*bucket, cache);
  return true;
}

// The fixed inputs hold padding rows only while capturing, so the eager warm-up of each
// bucket writes no KV and reads only the scratch block.
Status LlamaModel::capture_graphs(KvCache& cache) {
  Padded& p = *padded_;
  fill_padded_decode(p.layout, ForwardBatch{}, p.layout.capacity, cache.block_size(),
                     p.config.scratch_block, p.inputs.raw(), p.staging);
  backend_.copy({.dst = p.inputs.raw(), .src = p.staging.data(), .row_bytes = p.layout.total_bytes,
                 .kind = CopyKind::kHostToDevice});
  backend_.synchronize();  // the graphs' stream does not wait for this one
  // The largest bucket's plan sizes the attention workspace before any capture: a
  // captured graph keeps its address.
  plan_attention(padded_args(p.layout.capacity), cache.block_size());
  const Status st = p.graphs->capture([&](int bucket) { run_padded(bucket, cache); });
  p.graphs_generation = workspace_generation_;
  p.graphs->bind();
  return st;
}

Status LlamaModel::enable_padded_decode(const PaddedDecodeConfig& config, KvCache& cache) {
  if (config.buckets.empty() || config.max_model_len < 1 || config.scratch_block < 0 ||
      config.scratch_block >= cache.num_blocks()) {
    return invalid_argument("padded decode needs buckets, max_model_len >= 1 and a scratch block "
                            "in [0, {}). Given: {} buckets, {}, {}",
                            cache.num_blocks(), config.buckets.size(), config.max_model_len,
                            config.scratch_block);
  }
  padded_ = std::make_unique<Padded>();
  Padded& p = *padded_;
  p.config = config;
  p.cache = &cache;
  const int block_size = cache.block_size();
  p.layout = PaddedDecodeLayout::make(config.buckets.back(),
                                      (config.max_model_len + block_size - 1) / block_size);
  p.inputs = Tensor::empty(DType::kU8, {p.layout.total_bytes}, device_);
  const int64_t capacity = p.layout.capacity;
  ensure_workspace(std::max(config.max_num_tokens, capacity), capacity);
  if (!config.cuda_graphs || device_.is_cpu()) return ok_status();

  p.graphs = std::make_unique<DecodeGraphRunner>(config.buckets);
  if (Status st = capture_graphs(cache); !st.ok()) {
    p.graphs.reset();
    return st.with_context("capturing the decode CUDA graphs (--no-cuda-graphs turns them off)");
  }
  return ok_status();
}

}  // namespace strata
