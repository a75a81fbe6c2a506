// Paged prefill and decode attention on the GPU against the CPU kernels, for every entry
// of the supported table (head dims 32/64/128 × block sizes 16/32), with queries and
// contexts of 1, 19, 111 and 989 tokens and shuffled block tables. Skips without a GPU.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cuda/plan/launch_plan.h"
#include "kernels/kv_cache_format.h"
#include "tests/gpu/cuda_test_util.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels::testing {
namespace {

using GpuAttention = CudaTest;

// The sequences' KV lives in a shared pool of blocks in shuffled order; block tables are
// built on the host, then copied to the device with the pool.
struct PagedCase {
  int hq, hk, hd, bs;
  std::vector<AttentionSequence> seqs;  // host block tables
  std::vector<std::vector<int32_t>> tables;
  std::vector<float> q, k_cache, v_cache;
  int64_t num_tokens = 0;
  // With a cache dtype other than fp32, both backends read these tiles (store_as).
  DType cache_dtype = DType::kF32;
  std::vector<unsigned char> typed_k, typed_v;

  PagedCase(int hq_, int hk_, int hd_, int bs_, const std::vector<std::pair<int, int>>& shapes)
      : hq(hq_), hk(hk_), hd(hd_), bs(bs_) {
    int total_blocks = 0;
    for (auto [queries, context] : shapes) total_blocks += (context + bs - 1) / bs;
    std::vector<int32_t> order(static_cast<size_t>(total_blocks));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937(42));
    size_t next = 0;
    for (auto [queries, context] : shapes) {
      std::vector<int32_t> table;
      for (int b = 0; b < (context + bs - 1) / bs; ++b) table.push_back(order[next++]);
      tables.push_back(table);
      seqs.push_back({.query_start = static_cast<int32_t>(num_tokens), .num_queries = queries,
                      .context_len = context});
      num_tokens += queries;
    }
    for (size_t s = 0; s < seqs.size(); ++s) seqs[s].block_table = tables[s].data();
    q = random_floats(static_cast<size_t>(num_tokens * hq * hd), 20);
    const size_t cache = static_cast<size_t>(total_blocks) * hk * bs * hd;
    k_cache = random_floats(cache, 21);
    v_cache = random_floats(cache, 22);
  }

  // The fp32 pool written into `dtype` tiles by the CPU's KV-write kernel, one slot per
  // pool position.
  void store_as(DType dtype) {
    const int64_t blocks = static_cast<int64_t>(k_cache.size()) / (int64_t{hk} * bs * hd);
    std::vector<float> k_rows(k_cache.size()), v_rows(v_cache.size());
    std::vector<int32_t> slots(static_cast<size_t>(blocks * bs));
    for (int64_t slot = 0; slot < blocks * bs; ++slot) {
      slots[static_cast<size_t>(slot)] = static_cast<int32_t>(slot);
      for (int h = 0; h < hk; ++h) {
        const int64_t from = (((slot / bs) * hk + h) * bs + slot % bs) * hd, to = (slot * hk + h) * hd;
        std::copy_n(k_cache.begin() + from, hd, k_rows.begin() + to);
        std::copy_n(v_cache.begin() + from, hd, v_rows.begin() + to);
      }
    }
    const auto bytes = static_cast<size_t>(blocks * hk * kv_tile_bytes(dtype, bs, hd));
    typed_k.assign(bytes, 0);
    typed_v.assign(bytes, 0);
    cpu_backend().kv_cache_write({.k = k_rows.data(), .v = v_rows.data(), .k_stride = hk * hd,
                                  .v_stride = hk * hd, .k_cache = typed_k.data(),
                                  .v_cache = typed_v.data(), .cache_dtype = dtype,
                                  .slot_mapping = slots.data(), .t = blocks * bs,
                                  .num_kv_heads = hk, .head_dim = hd, .block_size = bs});
    cache_dtype = dtype;
  }

  PagedAttentionParams params(float* out) const {
    const bool typed = cache_dtype != DType::kF32;
    return {.q = q.data(), .q_stride = hq * hd,
            .k_cache = typed ? static_cast<const void*>(typed_k.data()) : k_cache.data(),
            .v_cache = typed ? static_cast<const void*>(typed_v.data()) : v_cache.data(),
            .cache_dtype = cache_dtype, .out = out, .out_stride = hq * hd, .num_q_heads = hq,
            .num_kv_heads = hk, .head_dim = hd, .block_size = bs,
            .scale = 1.0f / std::sqrt(static_cast<float>(hd))};
  }

  // All sequences through one kernel: the decode kernel's or the prefill kernel's.
  AttentionPlanParams plan_params(const std::vector<AttentionSequence>& which, bool decode) const {
    AttentionPlanParams pp{.num_q_heads = hq, .num_kv_heads = hk, .head_dim = hd, .block_size = bs};
    (decode ? pp.decode_seqs : pp.prefill_seqs) = which.data();
    (decode ? pp.num_decode_seqs : pp.num_prefill_seqs) = static_cast<int>(which.size());
    return pp;
  }

  // Plans and runs the decode or prefill kernel of both backends and returns the relative
  // error of the GPU's output.
  double compare(bool decode) const {
    const auto op = [decode](const KernelBackend& be) {
      return decode ? be.decode_attention : be.paged_attention;
    };
    std::vector<float> want(q.size());
    AttentionPlan cpu_plan;
    cpu_backend().plan_attention(plan_params(seqs, decode), cpu_plan);
    bind_attention_plan(cpu_plan, cpu_plan.metadata.data());
    std::vector<float> cpu_workspace(static_cast<size_t>(cpu_plan.workspace_bytes / 4 + 1));
    PagedAttentionParams cp = params(want.data());
    cp.plan = &cpu_plan;
    cp.workspace = cpu_workspace.data();
    op(cpu_backend())(cp);

    const bool typed = cache_dtype != DType::kF32;
    DeviceArray<float> dq(q), dout(q.size());
    // The cache's bytes, whatever its dtype.
    auto as_bytes = [](const std::vector<float>& f) {
      const auto* b = reinterpret_cast<const unsigned char*>(f.data());
      return std::vector<unsigned char>(b, b + f.size() * sizeof(float));
    };
    DeviceArray<unsigned char> dk(typed ? typed_k : as_bytes(k_cache));
    DeviceArray<unsigned char> dv(typed ? typed_v : as_bytes(v_cache));
    std::vector<std::unique_ptr<DeviceArray<int32_t>>> dtables;
    std::vector<AttentionSequence> device_seqs = seqs;
    for (size_t s = 0; s < seqs.size(); ++s) {
      dtables.push_back(std::make_unique<DeviceArray<int32_t>>(tables[s]));
      device_seqs[s].block_table = dtables.back()->get();
    }
    AttentionPlan gpu_plan;  // host arrays, device block tables
    cuda_backend().plan_attention(plan_params(device_seqs, decode), gpu_plan);
    DeviceArray<unsigned char> dmetadata(gpu_plan.metadata);
    bind_attention_plan(gpu_plan, dmetadata.get());
    DeviceArray<unsigned char> dworkspace(static_cast<size_t>(gpu_plan.workspace_bytes));
    PagedAttentionParams p = params(dout.get());
    p.q = dq.get();
    p.k_cache = dk.get();
    p.v_cache = dv.get();
    p.plan = &gpu_plan;
    p.workspace = dworkspace.get();
    op(cuda_backend())(p);
    return relative_error(dout.to_host(), want);
  }
};

TEST_F(GpuAttention, PrefillMatchesCpuOverTheSupportedTable) {
  for (int hd : cuda::AttentionConfigTable::kHeadDims) {
    for (int bs : cuda::AttentionConfigTable::kBlockSizes) {
      for (auto [hq, hk] : {std::pair{8, 2}, std::pair{4, 4}, std::pair{16, 1}}) {
        SCOPED_TRACE(::testing::Message() << "hd=" << hd << " bs=" << bs << " hq=" << hq
                                          << " hk=" << hk);
        // Prefill chunks of 1, 19, 111, 989 queries (some after cached context), plus a
        // decode token in the same call.
        const PagedCase c(hq, hk, hd, bs, {{1, 1}, {19, 26}, {111, 111}, {989, 989}, {1, 700}});
        EXPECT_LE(c.compare(/*decode=*/false),
                  2e-5);
      }
    }
  }
}

TEST_F(GpuAttention, DecodeMatchesCpuAcrossSplits) {
  for (int hd : cuda::AttentionConfigTable::kHeadDims) {
    for (int bs : cuda::AttentionConfigTable::kBlockSizes) {
      for (int num_seqs : {1, 19, 111}) {
        SCOPED_TRACE(::testing::Message() << "hd=" << hd << " bs=" << bs << " seqs=" << num_seqs);
        std::vector<std::pair<int, int>> shapes;
        const int contexts[] = {1, 19, 111, 989, 512, 513, 2100};
        for (int s = 0; s < num_seqs; ++s) shapes.push_back({1, contexts[s % 7]});
        const PagedCase c(8, 2, hd, bs, shapes);
        EXPECT_LE(c.compare(/*decode=*/true),
                  2e-5);
      }
    }
  }
}

// The GPU converts bf16, fp16 and int8 tiles exactly as the CPU does, so both kernels keep
// the fp32 cache's agreement with their CPU twins.
TEST_F(GpuAttention, EveryCacheDtypeMatchesCpu) {
  for (DType dtype : {DType::kBF16, DType::kF16, DType::kI8}) {
    for (int hd : cuda::AttentionConfigTable::kHeadDims) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " hd=" << hd);
      PagedCase prefill(8, 2, hd, 16, {{1, 1}, {19, 26}, {111, 111}, {1, 700}});
      prefill.store_as(dtype);
      EXPECT_LE(prefill.compare(/*decode=*/false), 2e-5);
      PagedCase decode(8, 2, hd, 32, {{1, 1}, {1, 19}, {1, 989}, {1, 2100}});
      decode.store_as(dtype);
      EXPECT_LE(decode.compare(/*decode=*/true), 2e-5);
    }
  }
}

TEST_F(GpuAttention, RejectsConfigurationsOutsideTheTable) {
  const PagedCase c(8, 2, 64, 16, {{1, 5}});
  AttentionPlanParams p = c.plan_params(c.seqs, /*decode=*/true);
  p.head_dim = 96;
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // re-exec: no CUDA state across fork
  AttentionPlan plan;
  EXPECT_DEATH(cuda_backend().plan_attention(p, plan), "head_dim must be one of 32, 64, 128");
}

}  // namespace
}  // namespace strata::kernels::testing
