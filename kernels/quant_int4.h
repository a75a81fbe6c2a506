// Group-wise int4 weights for the W4A16 GEMM (the format is defined in kernels/ops.h, at
// Int4Layout): quantization at load time, exact dequantization (the tests' reference and
// the CUDA twin's), the sizes of both layouts, and the one shape check every entry point
// shares. Host code, backend independent; the CPU packing is cpu_backend().pack_w4a16.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "kernels/dtype.h"

namespace strata::kernels {

// The group sizes the kernels support.
inline constexpr int kInt4GroupSizes[] = {32, 64, 128};

// "" when an [n, k] matrix can be held with groups of group_size, else a message naming
// the field, the limit and the value (k must be a positive multiple of the group size, the
// group size one of kInt4GroupSizes, n ≥ 0).
std::string int4_shape_error(int64_t n, int64_t k, int group_size);

// Bytes of an [n, k] matrix in Int4Layout::kBlocks: n · k/G · (2 + G/2).
int64_t int4_blocks_bytes(int64_t n, int64_t k, int group_size);
// Bytes of an [n, k] matrix in Int4Layout::kTiled (see ops.h).
int64_t int4_tiled_bytes(int64_t n, int64_t k, int group_size);

// Quantizes a row-major weight matrix into Int4Layout::kBlocks, exactly as ggml's
// quantize_row_q4_0 does for G = 32 (the same bytes from the same fp32 values).
struct QuantizeInt4Params {
  const void* src = nullptr;  // [n, k] row-major, dtype (fp32, bf16 or fp16), finite
  DType dtype = DType::kF32;
  void* dst = nullptr;        // int4_blocks_bytes(n, k, group_size) bytes
  int group_size = 32;
  int64_t n = 0, k = 0;
};
// Invalid argument for a bad shape or dtype, or for a group whose scale overflows fp16
// (|max| > 8 · 65504), naming the row and group.
Status quantize_int4(const QuantizeInt4Params& p);

// out[j, kk] = (q − 8) · d in fp32, exact: what every kernel multiplies the activations by.
// `blocks` is an [n, k] matrix in Int4Layout::kBlocks with a valid shape.
void dequantize_int4(const void* blocks, int group_size, int64_t n, int64_t k, float* out);

}  // namespace strata::kernels
