// Per-token int8 quantization fused into the ops that produce a GEMM's input (kernels/ops.h,
// W8A8): RMSNorm and SiLU·mul. Each row is computed exactly as the unfused op computes it
// (elementwise.cpp), so the int8 row is the quantization of those bits.
#pragma once

#include "kernels/ops.h"

namespace strata::kernels::cpu {

void rmsnorm_quant(const RmsNormQuantParams& p);
void silu_mul_quant(const SiluMulQuantParams& p);

}  // namespace strata::kernels::cpu
