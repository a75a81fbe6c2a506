#include "kernels/cpu/elementwise.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/check.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/isa.h"

namespace strata::kernels::cpu {
namespace {

// Rows per thread below which one thread is cheaper than waking the others.
int threads_for(int64_t rows, int64_t row_elems) {
  return rows * row_elems < (1 << 15) ? 1 : num_threads();
}

}  // namespace

void rmsnorm(const RmsNormParams& p) {
  STRATA_CHECK(p.m >= 0 && p.n > 0);
#pragma omp parallel for num_threads(threads_for(p.m, p.n)) schedule(static)
  for (int64_t i = 0; i < p.m; ++i) {
    const float* x = p.x + i * p.ldx;
    float* out = p.out + i * p.ldo;
    // Sum of squares in double, left to right: exact enough that fp32 rounding of the
    // result does not depend on n, and one fixed order per row.
    double sum_sq = 0.0;
    for (int64_t j = 0; j < p.n; ++j) sum_sq += static_cast<double>(x[j]) * x[j];
    const auto inv_rms =
        static_cast<float>(1.0 / std::sqrt(sum_sq / static_cast<double>(p.n) + p.eps));
    for (int64_t j = 0; j < p.n; ++j) out[j] = x[j] * inv_rms * p.weight[j];
  }
}

void rope(const RopeParams& p) {
  STRATA_CHECK(p.head_dim % 2 == 0);
  const int half = p.head_dim / 2;
#pragma omp parallel num_threads(threads_for(p.t, int64_t{p.num_q_heads + p.num_kv_heads} * p.head_dim))
  {
    std::vector<float> cos_sin(2 * static_cast<size_t>(half));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < p.t; ++t) {
      // One cos/sin per (token, pair), shared by every q and k head.
      for (int i = 0; i < half; ++i) {
        const double theta = static_cast<double>(p.positions[t]) * p.inv_freq[i];
        cos_sin[2 * i] = static_cast<float>(std::cos(theta));
        cos_sin[2 * i + 1] = static_cast<float>(std::sin(theta));
      }
      auto rotate = [&](float* row, int heads) {
        for (int h = 0; h < heads; ++h) {
          float* v = row + static_cast<int64_t>(h) * p.head_dim;
          for (int i = 0; i < half; ++i) {
            const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
            const float a = v[2 * i], b = v[2 * i + 1];
            v[2 * i] = a * c - b * s;
            v[2 * i + 1] = a * s + b * c;
          }
        }
      };
      if (p.q != nullptr) rotate(p.q + t * p.q_stride, p.num_q_heads);
      if (p.k != nullptr) rotate(p.k + t * p.k_stride, p.num_kv_heads);
    }
  }
}

void silu_mul(const SiluMulParams& p) {
#pragma omp parallel for num_threads(threads_for(p.t, p.f)) schedule(static)
  for (int64_t t = 0; t < p.t; ++t) {
    const float* gate = p.gate_up + t * p.ld_in;
    const float* up = gate + p.f;
    float* out = p.out + t * p.ld_out;
    for (int64_t j = 0; j < p.f; ++j) {
      const float g = gate[j];
      out[j] = g / (1.0f + std::exp(-g)) * up[j];
    }
  }
}

namespace {

void convert_row(const void* table, DType dtype, int64_t offset, int64_t n, float* out) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(out, static_cast<const float*>(table) + offset, static_cast<size_t>(n) * sizeof(float));
      break;
    case DType::kBF16: {
      const auto* row = static_cast<const uint16_t*>(table) + offset;
      for (int64_t j = 0; j < n; ++j) out[j] = bf16_to_f32(row[j]);
      break;
    }
    case DType::kF16: {
      const auto* row = static_cast<const uint16_t*>(table) + offset;
      for (int64_t j = 0; j < n; ++j) out[j] = f16_to_f32(row[j]);
      break;
    }
    default:
      STRATA_CHECK(false && "embedding table dtype must be fp32, bf16 or fp16");
  }
}

}  // namespace

void embedding(const EmbeddingParams& p) {
  for (int64_t t = 0; t < p.t; ++t) {
    const int64_t id = p.ids[t] - p.id_begin;
    float* out = p.out + t * p.dim;
    if (id < 0 || id >= p.table_rows) {  // another TP rank's vocabulary row
      std::memset(out, 0, static_cast<size_t>(p.dim) * sizeof(float));
      continue;
    }
    if (p.table_layout == WeightLayout::kRowMajor) {
      convert_row(p.table, p.table_dtype, id * p.dim, p.dim, out);
      continue;
    }
    // A tiled table keeps each row's elements in contiguous runs of one chunk.
    for (int64_t c = 0; c < p.dim; c += kWeightTileChunk) {
      const int64_t len = std::min<int64_t>(kWeightTileChunk, p.dim - c);
      convert_row(p.table, p.table_dtype, tiled_offset(id, c, p.table_rows, p.dim), len, out + c);
    }
  }
}

void add(const AddParams& p) {
#pragma omp parallel for num_threads(threads_for(p.m, p.n)) schedule(static)
  for (int64_t i = 0; i < p.m; ++i) {
    const float* x = p.x + i * p.ldx;
    float* y = p.y + i * p.ldy;
    for (int64_t j = 0; j < p.n; ++j) y[j] += x[j];
  }
}

void gather_rows(const GatherRowsParams& p) {
  for (int64_t i = 0; i < p.m; ++i) {
    std::memcpy(p.out + i * p.ldo, p.x + p.rows[i] * p.ldx, static_cast<size_t>(p.n) * sizeof(float));
  }
}

void copy(const CopyParams& p) {
  if (p.rows <= 0 || p.row_bytes <= 0) return;
  if (p.rows == 1 || (p.dst_pitch == p.row_bytes && p.src_pitch == p.row_bytes)) {
    std::memcpy(p.dst, p.src, static_cast<size_t>(p.rows * p.row_bytes));
    return;
  }
  for (int64_t r = 0; r < p.rows; ++r) {
    std::memcpy(static_cast<char*>(p.dst) + r * p.dst_pitch,
                static_cast<const char*>(p.src) + r * p.src_pitch, static_cast<size_t>(p.row_bytes));
  }
}

}  // namespace strata::kernels::cpu
