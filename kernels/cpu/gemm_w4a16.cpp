#include "kernels/cpu/gemm_w4a16.h"

#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/check.h"
#include "kernels/cpu/isa.h"
#include "kernels/quant_int4.h"

namespace strata::kernels::cpu {
namespace {

// A bad shape or layout here is the caller's bug (the loader checks shapes with
// int4_shape_error first): say what was wrong, then abort as STRATA_CHECK does.
void check_or_abort(const std::string& error) {
  if (error.empty()) return;
  std::fprintf(stderr, "strata: %s\n", error.c_str());
  std::abort();
}

// The kernel never runs more threads than cores, so a workspace sized for all cores fits
// whatever set_cpu_threads() says later.
int w4a16_threads() {
  const int cores = omp_get_num_procs();
  const int t = num_threads();
  return t < cores ? t : cores;
}

// q of element (j, kk) of a kBlocks matrix: the low nibble of byte kk % (G/2) of its
// group's block for the first half of the group, the high nibble for the second.
struct BlockRow {
  const uint8_t* row;  // row j's first block
  int g;
  uint8_t q(int64_t kk) const {
    const uint8_t* block = row + kk / g * (2 + g / 2);
    const int64_t i = kk % g;
    const uint8_t byte = block[2 + i % (g / 2)];
    return i < g / 2 ? byte & 15 : byte >> 4;
  }
  uint16_t d(int64_t group) const {
    uint16_t bits;
    std::memcpy(&bits, row + group * (2 + g / 2), 2);
    return bits;
  }
};

// One tile: rows [j0, j0 + rows) of the kBlocks matrix into the kTiled bytes at dst.
void pack_tile(const PackW4A16Params& p, int64_t j0, int64_t rows, uint8_t* dst) {
  const int g = p.group_size, spb = int4_block_scales(g);
  const int64_t kb = int4_row_blocks(p.k), row_bytes = p.k / g * (2 + g / 2);
  const auto* src = static_cast<const uint8_t*>(p.src);
  std::memset(dst, 0, static_cast<size_t>(int4_tile_bytes(rows, p.k, g)));
  for (int64_t r = 0; r < rows; ++r) {
    const BlockRow row{.row = src + (j0 + r) * row_bytes, .g = g};
    for (int64_t b = 0; b < kb; ++b) {
      auto* words = reinterpret_cast<uint16_t*>(dst + int4_nibbles_at(b, r, rows, g));
      for (int h = 0; h < 4; ++h) {
        for (int i = 0; i < 32; ++i) {
          const int64_t kk = b * kInt4TileK + int4_run_offset(g, h, i);
          const unsigned q = kk < p.k ? row.q(kk) : 8;  // padding: q − 8 = 0
          words[i] = static_cast<uint16_t>(words[i] | q << (4 * h));
        }
      }
      auto* scales = reinterpret_cast<uint16_t*>(dst + int4_scales_at(b, r, rows, g));
      for (int s = 0; s < spb; ++s) {
        const int64_t group = b * spb + s;
        scales[s] = group * g < p.k ? row.d(group) : 0;
      }
    }
  }
}

}  // namespace

Int4Layout pack_w4a16(const PackW4A16Params& p) {
  check_or_abort(int4_shape_error(p.n, p.k, p.group_size));
  STRATA_CHECK(p.src != nullptr && p.dst != nullptr);
  const int64_t tiles = (p.n + kInt4TileRows - 1) / kInt4TileRows;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t j0 = t * kInt4TileRows;
    const int64_t rows = p.n - j0 < kInt4TileRows ? p.n - j0 : kInt4TileRows;
    pack_tile(p, j0, rows,
              static_cast<uint8_t*>(p.dst) + int4_rows_bytes(j0, p.k, p.group_size));
  }
  return Int4Layout::kTiled;
}

int64_t gemm_w4a16_workspace_bytes(int64_t m, int64_t k) {
  const int cores = omp_get_num_procs();
  switch (cpu_isa()) {
    case CpuIsa::kAvx512: return gemm_w4a16_workspace_bytes_avx512(m, k, cores);
    case CpuIsa::kAvx2: return gemm_w4a16_workspace_bytes_avx2(m, k, cores);
    case CpuIsa::kScalar: return 0;
  }
  return 0;
}

void gemm_w4a16(const GemmW4A16Params& p) {
  check_or_abort(int4_shape_error(p.n, p.k, p.group_size));
  if (p.w_layout != Int4Layout::kTiled) {
    check_or_abort(
        "the CPU gemm_w4a16 reads Int4Layout::kTiled weights; pack them once at load with "
        "cpu_backend().pack_w4a16");
  }
  STRATA_CHECK(p.m >= 0);
  if (p.m == 0 || p.n == 0) return;
  STRATA_CHECK(p.x != nullptr && p.w != nullptr && p.y != nullptr);
  STRATA_CHECK(p.ldx >= p.k && p.ldy >= p.n);
  STRATA_CHECK(p.workspace != nullptr || gemm_w4a16_workspace_bytes(p.m, p.k) == 0);
  STRATA_CHECK(reinterpret_cast<uintptr_t>(p.workspace) % 64 == 0);
  const int threads = w4a16_threads();
  switch (cpu_isa()) {
    case CpuIsa::kAvx512:
      gemm_w4a16_avx512(p, p.workspace, threads);
      return;
    case CpuIsa::kAvx2:
      gemm_w4a16_avx2(p, p.workspace, threads);
      return;
    case CpuIsa::kScalar:
      gemm_w4a16_scalar(p, threads);
      return;
  }
}

}  // namespace strata::kernels::cpu
