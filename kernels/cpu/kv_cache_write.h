// The CPU KV-cache write: each token's K and V rows converted to the cache dtype and stored
// in their slots (formats in kernels/kv_cache_format.h). Plain C++: a step writes a few rows
// per token, nothing next to the attention that reads them.
#pragma once

#include <cstdint>

#include "kernels/ops.h"

namespace strata::kernels::cpu {

void kv_cache_write(const KvCacheWriteParams& p);

// One row of head_dim values quantized by the int8 rule: q[head_dim] and
// scales[kv_scale_groups(head_dim)] fp16 bits. The reference every backend matches.
void quantize_kv_row_int8(const float* x, int head_dim, int8_t* q, uint16_t* scales);

}  // namespace strata::kernels::cpu
