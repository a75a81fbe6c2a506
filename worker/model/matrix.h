// Matrix: one weight matrix of a layer in the form the forward pass multiplies by — dense
// (fp32 / bf16 / fp16, row-major or packed for the CPU), W8A8 (int8 per output channel,
// multiplied by int8 activations) or W4A16 (group-wise int4, multiplied by 16-bit
// activations) — and the one place that turns a dense checkpoint matrix into it at load.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"

namespace strata {

enum class Quantization : uint8_t { kNone, kW8A8, kW4A16 };

// "none", "w8a8", "w4a16".
std::optional<Quantization> parse_quantization(std::string_view name);
std::string_view quantization_name(Quantization q);

// Group size of the W4A16 weights strata quantizes: 32, GGUF Q4_0's block, so a Q4_0
// tensor runs as is and freshly quantized weights match llama.cpp's Q4_0 bit for bit.
inline constexpr int kW4A16GroupSize = 32;

struct Matrix {
  Quantization scheme = Quantization::kNone;
  // kNone:  [n, k] of the weight dtype, in `layout` (kRowMajor or the CPU's kTiled).
  // kW8A8:  the CPU's kInt8Packed bytes (scales inside), or int8 [n, k] (kRowMajor).
  // kW4A16: Int4Layout::kTiled bytes (CPU) or kBlocks bytes (CUDA), scales inside.
  Tensor data;
  Tensor scales;  // kW8A8 kRowMajor only: fp32 [n, w8a8_num_groups(k, w8a8_group)]
  int64_t w8a8_group = 0;  // kW8A8: 0 per output channel, 32 for GGUF Q8_0's blocks
  kernels::WeightLayout layout = kernels::WeightLayout::kRowMajor;
  kernels::Int4Layout int4_layout = kernels::Int4Layout::kBlocks;
  int64_t n = 0, k = 0;

  bool defined() const { return data.defined(); }
  size_t nbytes() const { return data.nbytes() + (scales.defined() ? scales.nbytes() : 0); }
  // The tensors to move when the weights go to another device.
  std::vector<Tensor*> tensors() { return {&data, &scales}; }
};

// Whether an [n, k] matrix can take the scheme (W4A16 needs k a multiple of its group,
// W8A8 n and k multiples of 4 on every backend, so a checkpoint quantizes the same way for
// the CPU and the GPU); one that cannot stays dense, and the loader says so, quoting
// quantization_shape_rule.
bool quantization_fits(Quantization scheme, int64_t n, int64_t k);
std::string_view quantization_shape_rule(Quantization scheme);

// Rewrites a row-major dense matrix in place in the layout `backend` reads fastest and
// returns that layout (kRowMajor without a pack_weights). `scratch` holds the row-major
// copy, reused across matrices, so packing costs one matrix of memory, not a second model.
kernels::WeightLayout pack_dense_in_place(const kernels::KernelBackend* backend, Tensor& w,
                                          std::vector<char>& scratch);

// `dense` is row-major [n, k] on the host (fp32, bf16 or fp16). Returns it quantized by
// `scheme` and laid out for `pack_for` (its pack ops; nullptr: the row-major forms the
// CUDA backend reads). `scratch` is reused across calls. Precondition: quantization_fits.
// Fails on weights the scheme cannot hold (an int4 scale beyond fp16), naming `name`.
StatusOr<Matrix> make_matrix(Tensor dense, Quantization scheme,
                             const kernels::KernelBackend* pack_for, std::vector<char>& scratch,
                             std::string_view name);

// A matrix from GGUF blocks kept as the file holds them: `blocks` is [n, k] in Q8_0
// (kW8A8: its int8 values and fp16 block scales become a group-32 W8A8 matrix, exactly) or
// Q4_0 (kW4A16: Q4_0 is Int4Layout::kBlocks with G = 32), laid out for `pack_for` as
// make_matrix does. Precondition: k a multiple of 32 and quantization_fits.
Matrix make_matrix_from_blocks(const Tensor& blocks, Quantization scheme, int64_t n, int64_t k,
                               const kernels::KernelBackend* pack_for);

// What a matrix multiplies: m rows of fp32 activations, and for a W8A8 matrix the same rows
// quantized per token by the op that produced them (rmsnorm_quant, silu_mul_quant).
struct MatrixInput {
  const float* x = nullptr;        // [m, k], row stride ldx (dense and W4A16 matrices)
  const int8_t* xq = nullptr;      // [m, k], row stride ldx (W8A8 matrices)
  const float* x_scale = nullptr;  // [m] (W8A8)
  int64_t ldx = 0;
};

// y = input · Wᵀ (+ bias) (+ y if accumulate) for m rows, with the backend's kernel for
// the matrix's scheme; `workspace` holds matmul_workspace_bytes(backend, w, m) bytes.
struct MatmulArgs {
  MatrixInput in;
  const float* bias = nullptr;  // [n] or nullptr
  float* y = nullptr;           // [m, n], row stride ldy
  int64_t ldy = 0;
  int64_t m = 0;
  bool accumulate = false;
  void* workspace = nullptr;
};
void matmul(const kernels::KernelBackend& backend, const Matrix& w, const MatmulArgs& args);
int64_t matmul_workspace_bytes(const kernels::KernelBackend& backend, const Matrix& w, int64_t m);

}  // namespace strata
