// Row-wise CPU ops that are cheap next to GEMM and attention: RMSNorm, RoPE, SiLU·mul,
// embedding lookup, residual add, row gather and copies. Plain C++ (the compiler vectorizes the inner loops for
// the baseline ISA); rows are split over threads, each row computed in one fixed order.
#pragma once

#include "kernels/ops.h"

namespace strata::kernels::cpu {

void rmsnorm(const RmsNormParams& p);
void rope(const RopeParams& p);
void silu_mul(const SiluMulParams& p);
void embedding(const EmbeddingParams& p);
void add(const AddParams& p);
void gather_rows(const GatherRowsParams& p);
void copy(const CopyParams& p);

}  // namespace strata::kernels::cpu
