#include "worker/model/matrix.h"

#include <fmt/format.h>

#include <cstring>

#include "common/check.h"
#include "kernels/quant_int4.h"
#include "kernels/dtype.h"
#include "kernels/w8a8.h"

namespace strata {

std::optional<Quantization> parse_quantization(std::string_view name) {
  if (name == "none" || name.empty()) return Quantization::kNone;
  if (name == "w8a8") return Quantization::kW8A8;
  if (name == "w4a16") return Quantization::kW4A16;
  return std::nullopt;
}

std::string_view quantization_name(Quantization q) {
  switch (q) {
    case Quantization::kNone: return "none";
    case Quantization::kW8A8: return "w8a8";
    case Quantization::kW4A16: return "w4a16";
  }
  return "?";
}

bool quantization_fits(Quantization scheme, int64_t n, int64_t k) {
  switch (scheme) {
    case Quantization::kNone: return true;
    case Quantization::kW8A8: return n % 4 == 0 && k % 4 == 0;
    case Quantization::kW4A16: return kernels::int4_shape_error(n, k, kW4A16GroupSize).empty();
  }
  return false;
}

std::string_view quantization_shape_rule(Quantization scheme) {
  return scheme == Quantization::kW8A8 ? "n and k multiples of 4, as cuBLASLt's int8 GEMM needs"
                                       : "k a multiple of the int4 group of 32";
}

kernels::WeightLayout pack_dense_in_place(const kernels::KernelBackend* backend, Tensor& w,
                                          std::vector<char>& scratch) {
  if (backend == nullptr || backend->pack_weights == nullptr) {
    return kernels::WeightLayout::kRowMajor;
  }
  scratch.resize(w.nbytes());
  std::memcpy(scratch.data(), w.raw(), w.nbytes());
  return backend->pack_weights(
      {.src = scratch.data(), .dst = w.raw(), .dtype = w.dtype(), .n = w.dim(0), .k = w.dim(1)});
}

namespace {

Matrix dense_matrix(Tensor w, const kernels::KernelBackend* backend, std::vector<char>& scratch) {
  Matrix m{.data = std::move(w)};
  m.n = m.data.dim(0);
  m.k = m.data.dim(1);
  m.layout = pack_dense_in_place(backend, m.data, scratch);
  return m;
}

// Per output channel: the scheme's activations are quantized per token, so one weight
// scale per row keeps the GEMM a single int32 sum per output.
// int8 values and scales in the backend's layout (row-major as they are without a pack_w8a8).
Matrix finish_w8a8(Matrix m, Tensor q, const kernels::KernelBackend* backend) {
  if (backend == nullptr || backend->pack_w8a8 == nullptr) {
    m.data = std::move(q);
    return m;
  }
  m.data = Tensor::empty(DType::kU8, {backend->w8a8_packed_bytes(m.n, m.k, m.w8a8_group)});
  m.layout = backend->pack_w8a8({.q = q.data<int8_t>(), .scales = m.scales.data<float>(),
                                 .dst = m.data.raw(), .n = m.n, .k = m.k,
                                 .group_size = m.w8a8_group});
  m.scales = Tensor();  // packed with the weights
  return m;
}

Matrix w8a8_matrix(const Tensor& w, const kernels::KernelBackend* backend) {
  Matrix m{.scheme = Quantization::kW8A8, .n = w.dim(0), .k = w.dim(1)};
  Tensor q = Tensor::empty(DType::kI8, {m.n, m.k});
  m.scales = Tensor::empty(DType::kF32, {m.n, kernels::w8a8_num_groups(m.k, 0)});
  kernels::quantize_weights_int8({.w = w.raw(), .w_dtype = w.dtype(), .n = m.n, .k = m.k,
                                  .group_size = 0, .q = q.data<int8_t>(),
                                  .scales = m.scales.data<float>()});
  return finish_w8a8(std::move(m), std::move(q), backend);
}

// Q8_0 block: fp16 scale d, then 32 int8 values; the value is q · d.
Matrix w8a8_from_q8_0(const Tensor& blocks, int64_t n, int64_t k,
                      const kernels::KernelBackend* backend) {
  constexpr int64_t kBlock = 32, kBlockBytes = 34;
  Matrix m{.scheme = Quantization::kW8A8, .w8a8_group = kBlock, .n = n, .k = k};
  Tensor q = Tensor::empty(DType::kI8, {n, k});
  m.scales = Tensor::empty(DType::kF32, {n, k / kBlock});
  const auto* src = static_cast<const uint8_t*>(blocks.raw());
  int8_t* values = q.data<int8_t>();
  float* scales = m.scales.data<float>();
  for (int64_t b = 0; b < n * (k / kBlock); ++b) {
    uint16_t d;
    std::memcpy(&d, src + b * kBlockBytes, 2);
    scales[b] = f16_to_f32(d);
    std::memcpy(values + b * kBlock, src + b * kBlockBytes + 2, kBlock);
  }
  return finish_w8a8(std::move(m), std::move(q), backend);
}

Matrix w4a16_from_blocks(Tensor blocks, int64_t n, int64_t k, const kernels::KernelBackend* backend) {
  Matrix m{.scheme = Quantization::kW4A16, .n = n, .k = k};
  if (backend == nullptr || backend->pack_w4a16 == nullptr) {
    m.data = std::move(blocks);
    return m;
  }
  m.data = Tensor::empty(DType::kU8, {kernels::int4_tiled_bytes(n, k, kW4A16GroupSize)});
  m.int4_layout = backend->pack_w4a16({.src = blocks.raw(), .dst = m.data.raw(),
                                       .group_size = kW4A16GroupSize, .n = n, .k = k});
  return m;
}

StatusOr<Matrix> w4a16_matrix(const Tensor& w, const kernels::KernelBackend* backend,
                              std::string_view name) {
  Matrix m{.scheme = Quantization::kW4A16, .n = w.dim(0), .k = w.dim(1)};
  Tensor blocks =
      Tensor::empty(DType::kU8, {kernels::int4_blocks_bytes(m.n, m.k, kW4A16GroupSize)});
  const Status st = kernels::quantize_int4({.src = w.raw(), .dtype = w.dtype(),
                                            .dst = blocks.raw(), .group_size = kW4A16GroupSize,
                                            .n = m.n, .k = m.k});
  if (!st.ok()) return st.with_context(fmt::format("--quantization w4a16 of {}", name));
  return w4a16_from_blocks(std::move(blocks), m.n, m.k, backend);
}

}  // namespace

StatusOr<Matrix> make_matrix(Tensor dense, Quantization scheme,
                             const kernels::KernelBackend* pack_for, std::vector<char>& scratch,
                             std::string_view name) {
  switch (scheme) {
    case Quantization::kNone: return dense_matrix(std::move(dense), pack_for, scratch);
    case Quantization::kW8A8: return w8a8_matrix(dense, pack_for);
    case Quantization::kW4A16: return w4a16_matrix(dense, pack_for, name);
  }
  STRATA_CHECK(false);
  return Matrix{};
}

Matrix make_matrix_from_blocks(const Tensor& blocks, Quantization scheme, int64_t n, int64_t k,
                               const kernels::KernelBackend* pack_for) {
  STRATA_CHECK(k % 32 == 0 && quantization_fits(scheme, n, k));
  if (scheme == Quantization::kW8A8) return w8a8_from_q8_0(blocks, n, k, pack_for);
  STRATA_CHECK(scheme == Quantization::kW4A16);
  return w4a16_from_blocks(blocks, n, k, pack_for);
}

void matmul(const kernels::KernelBackend& backend, const Matrix& w, const MatmulArgs& a) {
  switch (w.scheme) {
    case Quantization::kNone:
      backend.gemm({.x = a.in.x, .ldx = a.in.ldx, .w = w.data.raw(), .w_dtype = w.data.dtype(),
                    .w_layout = w.layout, .bias = a.bias, .y = a.y, .ldy = a.ldy, .m = a.m,
                    .n = w.n, .k = w.k, .accumulate = a.accumulate, .workspace = a.workspace});
      return;
    case Quantization::kW8A8:
      STRATA_CHECK(a.in.xq != nullptr && a.in.x_scale != nullptr);
      backend.gemm_w8a8({.x = a.in.xq, .ldx = a.in.ldx, .x_scale = a.in.x_scale,
                         .w = w.data.raw(),
                         .w_scale = w.scales.defined() ? w.scales.data<float>() : nullptr,
                         .w_layout = w.layout, .group_size = w.w8a8_group, .bias = a.bias, .y = a.y,
                         .ldy = a.ldy, .m = a.m, .n = w.n, .k = w.k,
                         .accumulate = a.accumulate, .workspace = a.workspace});
      return;
    case Quantization::kW4A16:
      backend.gemm_w4a16({.x = a.in.x, .ldx = a.in.ldx, .w = w.data.raw(),
                          .w_layout = w.int4_layout, .group_size = kW4A16GroupSize,
                          .bias = a.bias, .y = a.y, .ldy = a.ldy, .m = a.m, .n = w.n, .k = w.k,
                          .accumulate = a.accumulate, .workspace = a.workspace});
      return;
  }
}

int64_t matmul_workspace_bytes(const kernels::KernelBackend& backend, const Matrix& w, int64_t m) {
  switch (w.scheme) {
    case Quantization::kNone: return backend.gemm_workspace_bytes(w.data.dtype(), m, w.k);
    case Quantization::kW8A8: return backend.gemm_w8a8_workspace_bytes(m, w.n, w.k, w.w8a8_group);
    case Quantization::kW4A16: return backend.gemm_w4a16_workspace_bytes(m, w.k);
  }
  return 0;
}

}  // namespace strata
