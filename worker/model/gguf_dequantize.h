// Widening GGUF tensor rows to fp32: the float types and the block-quantized types a GGUF
// of a llama-family model holds (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the K-quants Q4_K, Q5_K,
// Q6_K). Each gives the same fp32 bits as the `gguf` package's dequantizers (gguf-py's
// quants.py, which follow ggml's dequantize_row_*): every product and sum is one fp32
// rounding in the same order, which the tests check bit for bit.
#pragma once

#include <cstdint>

#include "common/gguf/gguf_file.h"

namespace strata {

bool can_dequantize(gguf::GgmlType type);

// `count` consecutive elements from `src`, which starts on a block boundary; `count` is a
// whole number of the type's blocks. Precondition: can_dequantize(type).
void dequantize_gguf(gguf::GgmlType type, const uint8_t* src, int64_t count, float* out);

}  // namespace strata
