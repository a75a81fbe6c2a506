// Each CUDA kernel against its CPU twin (cpu_backend(), or a ten-line reference where the
// CPU backend has no such op) over 1, 19, 111 and 989 rows, W8A8 included. Skips without a
// GPU.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/cuda/plan/gemm_w4a16_plan.h"
#include "kernels/kv_cache_format.h"
#include "kernels/quant_int4.h"
#include "tests/gpu/cuda_test_util.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/w8a8_test_util.h"

namespace strata::kernels::testing {
namespace {

using GpuKernels = CudaTest;

std::vector<uint16_t> to_16bit(const std::vector<float>& x, DType dtype) {
  std::vector<uint16_t> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    out[i] = dtype == DType::kBF16 ? f32_to_bf16(x[i]) : f32_to_f16(x[i]);
  }
  return out;
}

TEST_F(GpuKernels, GemmMatchesCpuPerDtypeWithBiasAndAccumulate) {
  const int64_t n = 96, k = 136;
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (int64_t m : kAwkwardRows) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " m=" << m);
      const auto x = random_floats(static_cast<size_t>(m * k), 1);
      const auto w = random_floats(static_cast<size_t>(n * k), 2);
      const auto bias = random_floats(static_cast<size_t>(n), 3);
      const auto y0 = random_floats(static_cast<size_t>(m * n), 4);
      std::vector<uint16_t> w16 = to_16bit(w, dtype);
      const void* w_host = dtype == DType::kF32 ? static_cast<const void*>(w.data()) : w16.data();
      const size_t w_bytes = static_cast<size_t>(n * k) * dtype_size(dtype);
      std::vector<unsigned char> w_bytes_host(static_cast<const unsigned char*>(w_host),
                                              static_cast<const unsigned char*>(w_host) + w_bytes);
      DeviceArray<float> dx(x), dbias(bias), dy(y0);
      DeviceArray<unsigned char> dw(w_bytes_host);
      for (bool accumulate : {false, true}) {
        std::vector<float> want = y0;
        GemmParams p{.x = x.data(), .ldx = k, .w = w_host, .w_dtype = dtype, .bias = bias.data(),
                     .y = want.data(), .ldy = n, .m = m, .n = n, .k = k, .accumulate = accumulate};
        testing::cpu_gemm(p);
        DeviceArray<float> dy_run(y0);
        DeviceArray<unsigned char> dwork(std::vector<unsigned char>(
            static_cast<size_t>(std::max<int64_t>(1, cuda_backend().gemm_workspace_bytes(dtype, m, k)))));
        GemmParams dp = p;
        dp.workspace = dwork.get();
        dp.x = dx.get();
        dp.w = dw.get();
        dp.bias = dbias.get();
        dp.y = dy_run.get();
        cuda_backend().gemm(dp);
        EXPECT_LE(relative_error(dy_run.to_host(), want), error_bound(dtype))
            << "accumulate=" << accumulate;
      }
    }
  }
}

TEST_F(GpuKernels, RmsNormMatchesCpu) {
  const int64_t n = 1000;
  for (int64_t m : kAwkwardRows) {
    SCOPED_TRACE(::testing::Message() << "m=" << m);
    const auto x = random_floats(static_cast<size_t>(m * n), 7, -3.0f, 3.0f);
    const auto weight = random_floats(static_cast<size_t>(n), 9);
    std::vector<float> want(x.size());
    cpu_backend().rmsnorm({.x = x.data(), .ldx = n, .weight = weight.data(), .out = want.data(),
                           .ldo = n, .m = m, .n = n});
    DeviceArray<float> dx(x), dw(weight), dout(x.size());
    cuda_backend().rmsnorm({.x = dx.get(), .ldx = n, .weight = dw.get(), .out = dout.get(),
                            .ldo = n, .m = m, .n = n});
    EXPECT_LE(relative_error(dout.to_host(), want), 1e-6);
  }
}

TEST_F(GpuKernels, RopeMatchesCpu) {
  for (int hd : {64, 128}) {
    for (int64_t t : kAwkwardRows) {
      SCOPED_TRACE(::testing::Message() << "head_dim=" << hd << " t=" << t);
      const int hq = 8, hk = 2;
      auto q = random_floats(static_cast<size_t>(t * hq * hd), 10);
      auto k = random_floats(static_cast<size_t>(t * hk * hd), 11);
      std::vector<int32_t> pos(static_cast<size_t>(t));
      for (int64_t i = 0; i < t; ++i) pos[i] = static_cast<int32_t>((i * 7919) % 4096);
      std::vector<double> inv_freq(static_cast<size_t>(hd / 2));
      for (int i = 0; i < hd / 2; ++i) inv_freq[i] = std::pow(10000.0, -2.0 * i / hd);
      DeviceArray<float> dq(q), dk(k);
      DeviceArray<int32_t> dpos(pos);
      DeviceArray<double> dfreq(inv_freq);
      RopeParams p{.q = q.data(), .q_stride = hq * hd, .k = k.data(), .k_stride = hk * hd,
                   .positions = pos.data(), .inv_freq = inv_freq.data(), .t = t,
                   .num_q_heads = hq, .num_kv_heads = hk, .head_dim = hd};
      cpu_backend().rope(p);
      p.q = dq.get();
      p.k = dk.get();
      p.positions = dpos.get();
      p.inv_freq = dfreq.get();
      cuda_backend().rope(p);
      EXPECT_LE(relative_error(dq.to_host(), q), 1e-6);
      EXPECT_LE(relative_error(dk.to_host(), k), 1e-6);
    }
  }
}

TEST_F(GpuKernels, SiluMulMatchesCpu) {
  const int64_t f = 688;
  for (int64_t t : kAwkwardRows) {
    const auto gate_up = random_floats(static_cast<size_t>(t * 2 * f), 12, -6.0f, 6.0f);
    std::vector<float> want(static_cast<size_t>(t * f));
    SiluMulParams p{.gate_up = gate_up.data(), .ld_in = 2 * f, .out = want.data(), .ld_out = f,
                    .t = t, .f = f};
    cpu_backend().silu_mul(p);
    DeviceArray<float> din(gate_up), dout(want.size());
    p.gate_up = din.get();
    p.out = dout.get();
    cuda_backend().silu_mul(p);
    EXPECT_LE(relative_error(dout.to_host(), want), 1e-6) << "t=" << t;
  }
}

// `p` (host ids and table, no output) on the CPU, then on the device with the table at
// `device_table`: the rows must match exactly (a lookup and a conversion, no arithmetic).
void expect_embedding_twins(EmbeddingParams p, const void* device_table, const std::string& what) {
  std::vector<float> want(static_cast<size_t>(p.t * p.dim));
  p.out = want.data();
  cpu_backend().embedding(p);
  DeviceArray<int32_t> dids(std::vector<int32_t>(p.ids, p.ids + p.t));
  DeviceArray<float> dout(want.size());
  p.ids = dids.get();
  p.table = device_table;
  p.out = dout.get();
  cuda_backend().embedding(p);
  EXPECT_EQ(dout.to_host(), want) << what;
}

// fp32 copies, bf16 and fp16 round the same way, and int8 quantizes to the same values and
// fp16 scales: the GPU's cache bytes equal the CPU twin's.
TEST_F(GpuKernels, KvCacheWriteMatchesCpuInEveryCacheDtype) {
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16, DType::kI8}) {
    for (int hd : {32, 64, 128, 72}) {
      for (int bs : {16, 32}) {
        for (int64_t t : kAwkwardRows) {
          SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " hd=" << hd << " bs=" << bs
                                            << " t=" << t);
          const int hk = 2;
          const int64_t blocks = (2 * t + bs) / bs;
          auto k = random_floats(static_cast<size_t>(t * hk * hd), 23);
          const auto v = random_floats(static_cast<size_t>(t * hk * hd), 24);
          for (size_t i = 0; i < k.size(); ++i) k[i] *= static_cast<float>(1 + i % 7) * 3.0f;
          std::vector<int32_t> slots(static_cast<size_t>(t));
          for (int64_t i = 0; i < t; ++i) slots[i] = i % 5 == 3 ? -1 : static_cast<int32_t>(2 * i + 1);
          const auto bytes = static_cast<size_t>(blocks * hk * kv_tile_bytes(dtype, bs, hd));
          std::vector<unsigned char> kc(bytes), vc(bytes);
          KvCacheWriteParams p{.k = k.data(), .v = v.data(), .k_stride = hk * hd,
                               .v_stride = hk * hd, .k_cache = kc.data(), .v_cache = vc.data(),
                               .cache_dtype = dtype, .slot_mapping = slots.data(), .t = t,
                               .num_kv_heads = hk, .head_dim = hd, .block_size = bs};
          cpu_backend().kv_cache_write(p);
          DeviceArray<float> dk(k), dv(v);
          DeviceArray<unsigned char> dkc(bytes), dvc(bytes);
          DeviceArray<int32_t> dslots(slots);
          p.k = dk.get();
          p.v = dv.get();
          p.k_cache = dkc.get();
          p.v_cache = dvc.get();
          p.slot_mapping = dslots.get();
          cuda_backend().kv_cache_write(p);
          EXPECT_EQ(dkc.to_host(), kc);
          EXPECT_EQ(dvc.to_host(), vc);
        }
      }
    }
  }
}

TEST_F(GpuKernels, EmbeddingMatchesCpu) {
  const int64_t vocab = 1000, dim = 136;
  const auto table = random_floats(static_cast<size_t>(vocab * dim), 15);
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (int64_t t : kAwkwardRows) {
      std::vector<int32_t> ids(static_cast<size_t>(t));
      for (int64_t i = 0; i < t; ++i) ids[i] = static_cast<int32_t>((i * 31) % vocab);
      const auto t16 = to_16bit(table, dtype);
      const void* host = dtype == DType::kF32 ? static_cast<const void*>(table.data()) : t16.data();
      const size_t bytes = static_cast<size_t>(vocab * dim) * dtype_size(dtype);
      DeviceArray<unsigned char> dtable(std::vector<unsigned char>(
          static_cast<const unsigned char*>(host), static_cast<const unsigned char*>(host) + bytes));
      expect_embedding_twins({.ids = ids.data(), .table = host, .table_dtype = dtype, .table_rows = vocab,
                              .t = t, .dim = dim},
                             dtable.get(), std::string(dtype_name(dtype)) + " t=" + std::to_string(t));
    }
  }
}

TEST_F(GpuKernels, VocabParallelEmbeddingAddAndGatherMatchCpu) {
  const int64_t rows = 300, begin = 200, dim = 136;
  const auto table = random_floats(static_cast<size_t>(rows * dim), 17);
  DeviceArray<float> dtable(table);
  for (int64_t t : kAwkwardRows) {
    SCOPED_TRACE(::testing::Message() << "t=" << t);
    // Ids on both sides of this rank's slice [200, 500) of the vocabulary.
    std::vector<int32_t> ids(static_cast<size_t>(t));
    for (int64_t i = 0; i < t; ++i) ids[i] = static_cast<int32_t>((i * 37) % 700);
    expect_embedding_twins({.ids = ids.data(), .table = table.data(), .table_rows = rows, .id_begin = begin,
                            .t = t, .dim = dim},
                           dtable.get(), "t=" + std::to_string(t));

    // Residual add and the gather of every other row, reversed, with strides.
    const int64_t n = 111, ld = 115;
    const auto x = random_floats(static_cast<size_t>(t * ld), 18);
    auto y = random_floats(static_cast<size_t>(t * ld), 19);
    DeviceArray<float> dx(x), dy(y);
    AddParams a{.x = x.data(), .ldx = ld, .y = y.data(), .ldy = ld, .m = t, .n = n};
    cpu_backend().add(a);
    a.x = dx.get();
    a.y = dy.get();
    cuda_backend().add(a);
    EXPECT_EQ(dy.to_host(), y);

    std::vector<int32_t> picked;
    for (int64_t i = t - 1; i >= 0; i -= 2) picked.push_back(static_cast<int32_t>(i));
    const auto m = static_cast<int64_t>(picked.size());
    std::vector<float> gathered(static_cast<size_t>(m * n));
    GatherRowsParams g{.x = y.data(), .ldx = ld, .rows = picked.data(), .out = gathered.data(),
                       .ldo = n, .m = m, .n = n};
    cpu_backend().gather_rows(g);
    DeviceArray<int32_t> dpicked(picked);
    DeviceArray<float> dgathered(gathered.size());
    g.x = dy.get();
    g.rows = dpicked.get();
    g.out = dgathered.get();
    cuda_backend().gather_rows(g);
    EXPECT_EQ(dgathered.to_host(), gathered);
  }
}

TEST_F(GpuKernels, CopiesRoundTripWithPitches) {
  // Host [19 rows, pitch 40 floats] → device [pitch 33] → device [pitch 31] → host
  // [pitch 37]: the first 29 floats of each row survive, the rest of dst is untouched.
  const int64_t rows = 19, width = 29;
  const auto src = random_floats(static_cast<size_t>(rows * 40), 20);
  DeviceArray<float> a(static_cast<size_t>(rows * 33)), b(static_cast<size_t>(rows * 31));
  std::vector<float> back(static_cast<size_t>(rows * 37), -1.0f);
  const KernelBackend& be = cuda_backend();
  be.copy({.dst = a.get(), .dst_pitch = 33 * 4, .src = src.data(), .src_pitch = 40 * 4,
           .row_bytes = width * 4, .rows = rows, .kind = CopyKind::kHostToDevice});
  be.copy({.dst = b.get(), .dst_pitch = 31 * 4, .src = a.get(), .src_pitch = 33 * 4,
           .row_bytes = width * 4, .rows = rows, .kind = CopyKind::kDeviceToDevice});
  be.copy({.dst = back.data(), .dst_pitch = 37 * 4, .src = b.get(), .src_pitch = 31 * 4,
           .row_bytes = width * 4, .rows = rows, .kind = CopyKind::kDeviceToHost});
  be.synchronize();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < 37; ++j) {
      ASSERT_EQ(back[r * 37 + j], j < width ? src[r * 40 + j] : -1.0f) << r << " " << j;
    }
  }
}

// ---- W8A8 ----

// gemm_w8a8 on the GPU (row-major int8, cuBLASLt per channel, the direct kernel per group)
// against the CPU (packed): the same int8 inputs give the same bits (ops.h).
void expect_w8a8_twins(int64_t m, int64_t n, int64_t k, int64_t group, bool with_bias,
                       bool accumulate) {
  SCOPED_TRACE(::testing::Message() << "m=" << m << " n=" << n << " k=" << k << " group="
                                    << group << " bias=" << with_bias << " acc=" << accumulate);
  const int64_t ldx = k + 4 * (group != 0) + 4, ldy = n + 3;
  const auto x = random_int8(static_cast<size_t>(m * ldx), 1);
  const auto x_scale = random_floats(static_cast<size_t>(m), 2, 1e-3f, 5e-2f);
  const QuantizedWeights w = random_quantized(n, k, group, 3);
  const auto bias = random_floats(static_cast<size_t>(n), 4);
  const auto y0 = random_floats(static_cast<size_t>(m * ldy), 5);
  GemmW8A8Params p{.x = x.data(), .ldx = ldx, .x_scale = x_scale.data(), .group_size = group,
                   .bias = with_bias ? bias.data() : nullptr, .ldy = ldy, .m = m, .n = n,
                   .k = k, .accumulate = accumulate};
  std::vector<float> want = y0;
  const AlignedBytes packed = pack_for_cpu(w);
  AlignedBytes cpu_work(cpu_backend().gemm_w8a8_workspace_bytes(m, n, k, group));
  GemmW8A8Params cp = p;
  cp.w = packed.get();
  cp.y = want.data();
  cp.workspace = cpu_work.get();
  cpu_backend().gemm_w8a8(cp);

  DeviceArray<int8_t> dx(x), dw(w.q);
  DeviceArray<float> dxs(x_scale), dws(w.scales), dbias(bias), dy(y0);
  DeviceArray<unsigned char> dwork(
      static_cast<size_t>(cuda_backend().gemm_w8a8_workspace_bytes(m, n, k, group)));
  GemmW8A8Params dp = p;
  dp.x = dx.get();
  dp.x_scale = dxs.get();
  dp.w = dw.get();
  dp.w_scale = dws.get();
  dp.w_layout = WeightLayout::kRowMajor;
  dp.bias = with_bias ? dbias.get() : nullptr;
  dp.y = dy.get();
  dp.workspace = dwork.get();
  cuda_backend().gemm_w8a8(dp);
  EXPECT_EQ(dy.to_host(), want);
}

TEST_F(GpuKernels, GemmW8A8PerChannelIsTheCpuBitForBit) {
  for (int64_t m : kAwkwardRows) {
    expect_w8a8_twins(m, 96, 136, 0, false, false);
    expect_w8a8_twins(m, 200, 2048, 0, true, true);
  }
}

TEST_F(GpuKernels, GemmW8A8PerGroupIsTheCpuBitForBitAtOddShapes) {
  for (int64_t m : kAwkwardRows) {
    expect_w8a8_twins(m, 19, 100, 32, true, false);
    expect_w8a8_twins(m, 111, 172, 64, false, true);
  }
}

TEST_F(GpuKernels, GemmW8A8RefusesShapesCuBlasLtCannotTake) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const int64_t m = 3, n = 19, k = 64;
  DeviceArray<int8_t> dx(static_cast<size_t>(m * k)), dw(static_cast<size_t>(n * k));
  DeviceArray<float> dxs(static_cast<size_t>(m)), dws(static_cast<size_t>(n)),
      dy(static_cast<size_t>(m * n));
  DeviceArray<unsigned char> dwork(
      static_cast<size_t>(cuda_backend().gemm_w8a8_workspace_bytes(m, n, k, 0)));
  const GemmW8A8Params p{.x = dx.get(), .ldx = k, .x_scale = dxs.get(), .w = dw.get(),
                         .w_scale = dws.get(), .w_layout = WeightLayout::kRowMajor,
                         .y = dy.get(), .ldy = n, .m = m, .n = n, .k = k,
                         .workspace = dwork.get()};
  EXPECT_DEATH(cuda_backend().gemm_w8a8(p),
               "k, n and ldx must be multiples of 4. Given: k=64 n=19");
}

// The activation ops quantize what rmsnorm / silu_mul compute on each side, which differ in
// RMSNorm's summation order and in expf: a value within an ulp of a rounding half may land
// one step away, and a scale may differ in its last bit — rarely (at most 1 in 1000 here).
void expect_quant_twins(const std::vector<int8_t>& got_q, const std::vector<float>& got_scale,
                        const std::vector<int8_t>& want_q, const std::vector<float>& want_scale) {
  ASSERT_EQ(got_q.size(), want_q.size());
  size_t off_by_one = 0;
  for (size_t i = 0; i < want_q.size(); ++i) {
    ASSERT_LE(std::abs(int{got_q[i]} - want_q[i]), 1) << "at " << i;
    off_by_one += got_q[i] != want_q[i];
  }
  EXPECT_LE(off_by_one, want_q.size() / 1000 + 1);
  for (size_t i = 0; i < want_scale.size(); ++i) {
    EXPECT_NEAR(got_scale[i], want_scale[i], 2.5e-7 * want_scale[i]) << "row " << i;
  }
}

TEST_F(GpuKernels, RmsNormQuantMatchesCpu) {
  const int64_t n = 1000, ldo = n + 8;
  for (int64_t m : kAwkwardRows) {
    SCOPED_TRACE(::testing::Message() << "m=" << m);
    const auto x = random_floats(static_cast<size_t>(m * n), 7, -3.0f, 3.0f);
    const auto weight = random_floats(static_cast<size_t>(n), 9);
    std::vector<int8_t> want(static_cast<size_t>(m * ldo));
    std::vector<float> want_scale(static_cast<size_t>(m));
    RmsNormQuantParams p{.x = x.data(), .ldx = n, .weight = weight.data(), .out = want.data(),
                         .ldo = ldo, .scale = want_scale.data(), .m = m, .n = n};
    cpu_backend().rmsnorm_quant(p);
    DeviceArray<float> dx(x), dw(weight), dscale(want_scale.size());
    DeviceArray<int8_t> dout(want.size());
    p.x = dx.get();
    p.weight = dw.get();
    p.out = dout.get();
    p.scale = dscale.get();
    cuda_backend().rmsnorm_quant(p);
    expect_quant_twins(dout.to_host(), dscale.to_host(), want, want_scale);
  }
}

TEST_F(GpuKernels, SiluMulQuantMatchesCpu) {
  const int64_t f = 688;
  for (int64_t t : kAwkwardRows) {
    SCOPED_TRACE(::testing::Message() << "t=" << t);
    const auto gate_up = random_floats(static_cast<size_t>(t * 2 * f), 12, -6.0f, 6.0f);
    std::vector<int8_t> want(static_cast<size_t>(t * f));
    std::vector<float> want_scale(static_cast<size_t>(t));
    SiluMulQuantParams p{.gate_up = gate_up.data(), .ld_in = 2 * f, .out = want.data(),
                         .ld_out = f, .scale = want_scale.data(), .t = t, .f = f};
    cpu_backend().silu_mul_quant(p);
    DeviceArray<float> din(gate_up), dscale(want_scale.size());
    DeviceArray<int8_t> dout(want.size());
    p.gate_up = din.get();
    p.out = dout.get();
    p.scale = dscale.get();
    cuda_backend().silu_mul_quant(p);
    expect_quant_twins(dout.to_host(), dscale.to_host(), want, want_scale);
  }
}

// W4A16: the CUDA kernels read the kBlocks bytes the host quantized; the CPU twin reads
// the same matrix packed to kTiled. Both multiply by the exact weights, so they differ by
// fp32 summation order only. m = 1, 3 and 8 take the GEMV (whose rows must also keep their
// bits whatever the batch), 19 and up the exact hi/lo split through cuBLAS; n = 1100 spans
// two dequantized slices.
using cuda::kW4GemvMaxRows;
using cuda::plan_gemm_w4a16;

struct Int4Matrix {
  std::vector<uint8_t> blocks, tiled;
};

Int4Matrix make_int4_matrix(int64_t n, int64_t k, int g) {
  const auto w = random_floats(static_cast<size_t>(n * k), 41);
  Int4Matrix out;
  out.blocks.resize(static_cast<size_t>(int4_blocks_bytes(n, k, g)));
  EXPECT_TRUE(quantize_int4({.src = w.data(), .dtype = DType::kF32, .dst = out.blocks.data(),
                             .group_size = g, .n = n, .k = k})
                  .ok());
  out.tiled.resize(static_cast<size_t>(int4_tiled_bytes(n, k, g)));
  cpu_backend().pack_w4a16(
      {.src = out.blocks.data(), .dst = out.tiled.data(), .group_size = g, .n = n, .k = k});
  return out;
}

std::vector<float> cpu_w4a16(GemmW4A16Params p, const Int4Matrix& w, std::vector<float> y) {
  const int64_t bytes = cpu_backend().gemm_w4a16_workspace_bytes(p.m, p.k);
  std::unique_ptr<void, decltype(&std::free)> ws(
      std::aligned_alloc(64, static_cast<size_t>((bytes + 63) / 64 * 64 + 64)), &std::free);
  p.w = w.tiled.data();
  p.w_layout = Int4Layout::kTiled;
  p.y = y.data();
  p.workspace = ws.get();
  cpu_backend().gemm_w4a16(p);
  return y;
}

std::vector<float> gpu_w4a16(GemmW4A16Params p, const DeviceArray<unsigned char>& w,
                             const std::vector<float>& y0) {
  DeviceArray<float> dx(std::vector<float>(p.x, p.x + p.m * p.ldx)), dy(y0);
  DeviceArray<float> dbias(p.bias != nullptr ? std::vector<float>(p.bias, p.bias + p.n)
                                             : std::vector<float>(1));
  DeviceArray<unsigned char> ws(
      static_cast<size_t>(cuda_backend().gemm_w4a16_workspace_bytes(p.m, p.k)));
  p.x = dx.get();
  p.w = w.get();
  p.w_layout = Int4Layout::kBlocks;
  p.bias = p.bias != nullptr ? dbias.get() : nullptr;
  p.y = dy.get();
  p.workspace = ws.get();
  cuda_backend().gemm_w4a16(p);
  return dy.to_host();
}

TEST_F(GpuKernels, GemmW4A16MatchesCpuPerGroupSizeOnBothPaths) {
  const int64_t k_for[] = {288, 384, 384};  // 288: the last step of 32 words is partial
  for (int gi = 0; gi < 3; ++gi) {
    const int g = kInt4GroupSizes[gi];
    const int64_t k = k_for[gi];
    for (int64_t n : {int64_t{97}, int64_t{1100}}) {
      const Int4Matrix w = make_int4_matrix(n, k, g);
      DeviceArray<unsigned char> dw(std::vector<unsigned char>(w.blocks.begin(), w.blocks.end()));
      const auto bias = random_floats(static_cast<size_t>(n), 43);
      for (int64_t m : {1, 3, 8, 19, 111, 989}) {
        if (n == 1100 && m != 1 && m != 19) continue;
        SCOPED_TRACE(::testing::Message() << "g=" << g << " n=" << n << " m=" << m);
        const int64_t ldx = k + 5, ldy = n + 3;
        const auto x = random_floats(static_cast<size_t>(m * ldx), 42);
        const auto y0 = random_floats(static_cast<size_t>(m * ldy), 44);
        for (bool accumulate : {false, true}) {
          const GemmW4A16Params p{.x = x.data(), .ldx = ldx, .group_size = g,
                                  .bias = accumulate ? nullptr : bias.data(), .ldy = ldy,
                                  .m = m, .n = n, .k = k, .accumulate = accumulate};
          EXPECT_LE(relative_error(gpu_w4a16(p, dw, y0), cpu_w4a16(p, w, y0)), 1e-4)
              << "accumulate=" << accumulate << " path="
              << (plan_gemm_w4a16(m, n, k).gemv ? "gemv" : "cublas");
        }
      }
    }
  }
}

TEST_F(GpuKernels, GemmW4A16GemvRowKeepsItsBitsAloneAndInABatch) {
  const int64_t n = 97, k = 384;
  const Int4Matrix w = make_int4_matrix(n, k, 32);
  DeviceArray<unsigned char> dw(std::vector<unsigned char>(w.blocks.begin(), w.blocks.end()));
  const auto x = random_floats(static_cast<size_t>(kW4GemvMaxRows * k), 45);
  const GemmW4A16Params batch_p{.x = x.data(), .ldx = k, .group_size = 32, .ldy = n,
                                .m = kW4GemvMaxRows, .n = n, .k = k};
  const auto batch = gpu_w4a16(batch_p, dw, std::vector<float>(kW4GemvMaxRows * n));
  for (int64_t i : {0, 5, 7}) {
    GemmW4A16Params one = batch_p;
    one.x = x.data() + i * k;
    one.m = 1;
    const auto alone = gpu_w4a16(one, dw, std::vector<float>(n));
    EXPECT_EQ(0, std::memcmp(alone.data(), batch.data() + i * n, n * sizeof(float))) << "row " << i;
  }
}

}  // namespace
}  // namespace strata::kernels::testing
