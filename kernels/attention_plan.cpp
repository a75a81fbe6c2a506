#include "kernels/attention_plan.h"

#include <cstring>

#include "common/check.h"
#include "kernels/kv_cache_format.h"

namespace strata::kernels {
namespace {

constexpr int64_t kMetadataAlign = 16;

int64_t align16(int64_t bytes) {
  return (bytes + kMetadataAlign - 1) / kMetadataAlign * kMetadataAlign;
}

int64_t seq_bytes(int n) {
  return align16(int64_t{n} * static_cast<int64_t>(sizeof(AttentionSequence)));
}

}  // namespace

int64_t attention_metadata_bytes_bound(int num_decode_seqs, int num_prefill_seqs,
                                       int64_t num_prefill_queries) {
  return seq_bytes(num_decode_seqs) + seq_bytes(num_prefill_seqs) +
         align16(num_prefill_queries * static_cast<int64_t>(sizeof(AttentionWorkItem)));
}

void start_attention_plan(const AttentionPlanParams& p, AttentionPlan& plan) {
  STRATA_CHECK(p.num_kv_heads > 0 && p.num_q_heads % p.num_kv_heads == 0);
  STRATA_CHECK(p.head_dim > 0 && p.block_size > 0);
  STRATA_CHECK(p.num_decode_seqs >= 0 && p.num_prefill_seqs >= 0);
  STRATA_CHECK(p.num_decode_seqs == 0 ||
               (p.decode_seqs != nullptr) != (p.device_decode_seqs != nullptr));
  STRATA_CHECK(p.num_prefill_seqs == 0 || p.prefill_seqs != nullptr);
  plan.num_q_heads = p.num_q_heads;
  plan.num_kv_heads = p.num_kv_heads;
  plan.head_dim = p.head_dim;
  plan.block_size = p.block_size;
  plan.num_decode_seqs = p.num_decode_seqs;
  plan.max_context_len = p.device_decode_seqs != nullptr ? p.max_context_len : 0;
  for (int s = 0; p.decode_seqs != nullptr && s < p.num_decode_seqs; ++s) {
    // A prefill chunk here is a routing bug in the caller (plan it as a prefill sequence).
    STRATA_CHECK(p.decode_seqs[s].num_queries == 1 && p.decode_seqs[s].context_len >= 1);
    if (p.decode_seqs[s].context_len > plan.max_context_len) {
      plan.max_context_len = p.decode_seqs[s].context_len;
    }
  }
  for (int s = 0; s < p.num_prefill_seqs; ++s) {
    const AttentionSequence& seq = p.prefill_seqs[s];
    STRATA_CHECK(seq.num_queries >= 0 && seq.context_len >= seq.num_queries);
  }
  plan.decode_splits = 0;
  plan.num_prefill_seqs = p.num_prefill_seqs;
  plan.prefill_items.clear();
  plan.threads = 1;
  plan.workspace_bytes = 0;
  plan.metadata.clear();
  plan.decode_seqs = p.device_decode_seqs;
  plan.prefill_seqs = nullptr;
  plan.items = nullptr;
}

void write_attention_metadata(const AttentionPlanParams& p, AttentionPlan& plan) {
  const bool host_decode = p.decode_seqs != nullptr && p.num_decode_seqs > 0;
  plan.decode_seqs_at = host_decode ? 0 : -1;
  plan.prefill_seqs_at = host_decode ? seq_bytes(p.num_decode_seqs) : 0;
  plan.prefill_items_at = plan.prefill_seqs_at + seq_bytes(p.num_prefill_seqs);
  const auto item_bytes =
      static_cast<int64_t>(plan.prefill_items.size() * sizeof(AttentionWorkItem));
  plan.metadata.assign(static_cast<size_t>(plan.prefill_items_at + item_bytes), 0);
  unsigned char* image = plan.metadata.data();
  if (host_decode) {
    std::memcpy(image, p.decode_seqs,
                sizeof(AttentionSequence) * static_cast<size_t>(p.num_decode_seqs));
  }
  if (p.num_prefill_seqs > 0) {
    std::memcpy(image + plan.prefill_seqs_at, p.prefill_seqs,
                sizeof(AttentionSequence) * static_cast<size_t>(p.num_prefill_seqs));
  }
  if (item_bytes > 0) {
    std::memcpy(image + plan.prefill_items_at, plan.prefill_items.data(),
                static_cast<size_t>(item_bytes));
  }
  int64_t prefill_queries = 0;
  for (int s = 0; s < p.num_prefill_seqs; ++s) prefill_queries += p.prefill_seqs[s].num_queries;
  STRATA_CHECK(
      static_cast<int64_t>(plan.metadata.size()) <=
      attention_metadata_bytes_bound(p.num_decode_seqs, p.num_prefill_seqs, prefill_queries));
}

void bind_attention_plan(AttentionPlan& plan, const void* device_metadata) {
  const auto* base = static_cast<const unsigned char*>(device_metadata);
  STRATA_CHECK(plan.metadata.empty() || base != nullptr);
  if (plan.decode_seqs_at >= 0) {
    plan.decode_seqs = reinterpret_cast<const AttentionSequence*>(base + plan.decode_seqs_at);
  }
  plan.prefill_seqs = plan.num_prefill_seqs > 0
                          ? reinterpret_cast<const AttentionSequence*>(base + plan.prefill_seqs_at)
                          : nullptr;
  plan.items = plan.prefill_items.empty()
                   ? nullptr
                   : reinterpret_cast<const AttentionWorkItem*>(base + plan.prefill_items_at);
}

void check_attention_run(const PagedAttentionParams& p) {
  STRATA_CHECK(p.plan != nullptr);
  const AttentionPlan& plan = *p.plan;
  STRATA_CHECK(p.num_q_heads == plan.num_q_heads && p.num_kv_heads == plan.num_kv_heads &&
               p.head_dim == plan.head_dim && p.block_size == plan.block_size);
  STRATA_CHECK(plan.workspace_bytes == 0 || p.workspace != nullptr);
  STRATA_CHECK(is_kv_cache_dtype(p.cache_dtype));
}

}  // namespace strata::kernels
