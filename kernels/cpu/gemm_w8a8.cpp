// CPU W8A8: packing at load time, the per-call activation preparation, and the dispatch to
// an ISA path (gemm_w8a8_avx512.cpp, gemm_w8a8_avx2.cpp, gemm_w8a8_scalar.cpp).
#include "kernels/cpu/gemm_w8a8.h"

#include <cstring>

#include "common/check.h"
#include "kernels/cpu/isa.h"
#include "kernels/w8a8.h"

namespace strata::kernels::cpu {
namespace {

int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// Workspace: [m, x_stride] int8 activations, then [m, groups] int32 corrections.
int64_t x_stride(int64_t k) { return round_up(k, 64); }
int64_t corr_offset(int64_t m, int64_t k) { return round_up(m * x_stride(k), 64); }

// Tile t of the packed buffer from rows [64t, 64t + 64) of q and scales (dst pre-zeroed).
void pack_tile(const PackW8A8Params& p, const W8Layout& l, int64_t t, uint8_t* dst) {
  const int64_t c_end = p.n - t * kInt8TileCols < kInt8TileCols ? p.n - t * kInt8TileCols
                                                                : kInt8TileCols;
  for (int64_t g = 0; g < l.groups; ++g) {
    uint8_t* group = dst + g * l.group_stride;
    const int64_t blocks = w8_group_blocks(l, g);
    auto* scales = reinterpret_cast<float*>(group + blocks * kW8BlockBytes);
    const int64_t k_begin = g * l.group_k;
    const int64_t k_end = k_begin + blocks * 4 < p.k ? k_begin + blocks * 4 : p.k;
    const int64_t whole = (k_end - k_begin) / 4;  // blocks with all four bytes in range
    for (int64_t c = 0; c < c_end; ++c) {
      const int64_t j = t * kInt8TileCols + c;
      const int8_t* row = p.q + j * p.k + k_begin;
      // Four consecutive k of one column form a 32-bit lane of a block; +128 on each byte is
      // a flip of its top bit. Word copies keep loading a model at memory speed.
      for (int64_t b = 0; b < whole; ++b) {
        uint32_t lane;
        std::memcpy(&lane, row + 4 * b, 4);
        lane ^= 0x80808080u;
        std::memcpy(group + b * kW8BlockBytes + 4 * c, &lane, 4);
      }
      for (int64_t kk = k_begin + whole * 4; kk < k_end; ++kk) {
        const int64_t b = (kk - k_begin) / 4;
        group[b * kW8BlockBytes + 4 * c + kk % 4] = static_cast<uint8_t>(p.q[j * p.k + kk] + 128);
      }
      scales[c] = p.scales[j * l.groups + g];
    }
  }
}

// Row i of the activations into the workspace (see W8Activations).
void prepare_row(const GemmW8A8Params& p, const W8Layout& l, int64_t i, int8_t* x_out,
                 int32_t* corr_out) {
  const int64_t ld = x_stride(p.k);
  const int8_t* src = p.x + i * p.ldx;
  int8_t* dst = x_out + i * ld;
  std::memcpy(dst, src, static_cast<size_t>(p.k));
  std::memset(dst + p.k, 0, static_cast<size_t>(ld - p.k));
  for (int64_t g = 0; g < l.groups; ++g) {
    const int64_t end = (g + 1) * l.group_k < p.k ? (g + 1) * l.group_k : p.k;
    int32_t sum = 0;
    for (int64_t kk = g * l.group_k; kk < end; ++kk) sum += src[kk];
    corr_out[i * l.groups + g] = -128 * sum;
  }
}

}  // namespace

int64_t w8a8_packed_bytes(int64_t n, int64_t k, int64_t group_size) {
  check_w8a8_shape("w8a8_packed_bytes", k, group_size);
  STRATA_CHECK(n >= 0);
  const W8Layout l = w8_layout(n, k, group_size);
  return l.tiles * l.tile_bytes;
}

WeightLayout pack_w8a8(const PackW8A8Params& p) {
  check_w8a8_shape("pack_w8a8", p.k, p.group_size);
  STRATA_CHECK(p.n >= 0 && p.q != nullptr && p.scales != nullptr && p.dst != nullptr);
  const W8Layout l = w8_layout(p.n, p.k, p.group_size);
  auto* dst = static_cast<uint8_t*>(p.dst);
  std::memset(dst, 0, static_cast<size_t>(l.tiles * l.tile_bytes));
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < l.tiles; ++t) pack_tile(p, l, t, dst + t * l.tile_bytes);
  return WeightLayout::kInt8Packed;
}

int64_t gemm_w8a8_workspace_bytes(int64_t m, int64_t n, int64_t k, int64_t group_size) {
  check_w8a8_shape("gemm_w8a8_workspace_bytes", k, group_size);
  STRATA_CHECK(m >= 0 && n >= 0);
  return corr_offset(m, k) + m * w8a8_num_groups(k, group_size) * 4;
}

void gemm_w8a8(const GemmW8A8Params& p) {
  check_gemm_w8a8(p, WeightLayout::kInt8Packed, "cpu");
  if (p.m == 0 || p.n == 0) return;
  const W8Layout l = w8_layout(p.n, p.k, p.group_size);
  auto* x_out = static_cast<int8_t*>(p.workspace);
  auto* corr_out = reinterpret_cast<int32_t*>(x_out + corr_offset(p.m, p.k));
  const int threads = num_threads();
  // Preparing is a copy of m · k bytes: one thread unless there are many rows.
#pragma omp parallel for num_threads(p.m * p.k >= (1 << 18) ? threads : 1) schedule(static)
  for (int64_t i = 0; i < p.m; ++i) prepare_row(p, l, i, x_out, corr_out);
  const W8Activations a{.x = x_out, .ldx = x_stride(p.k), .corr = corr_out};
  switch (cpu_isa()) {
    case CpuIsa::kAvx512: gemm_w8a8_avx512(p, l, a, threads); return;
    case CpuIsa::kAvx2: gemm_w8a8_avx2(p, l, a, threads); return;
    case CpuIsa::kScalar: gemm_w8a8_scalar(p, l, a, threads); return;
  }
}

}  // namespace strata::kernels::cpu
