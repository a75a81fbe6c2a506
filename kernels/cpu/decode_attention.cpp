// Decode attention dispatcher: runs the plan's decode sequences on the ISA path. The
// scalar path's primitives live in attention.cpp.
#include "kernels/cpu/decode_attention.h"

#include <algorithm>

#include "common/check.h"
#include "kernels/attention_plan.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/isa.h"

namespace strata::kernels::cpu {

void decode_attention(const PagedAttentionParams& p) {
  check_attention_run(p);
  const int64_t work = static_cast<int64_t>(p.plan->num_decode_seqs) * p.num_kv_heads;
  if (work == 0) return;
  STRATA_CHECK(p.plan->decode_seqs != nullptr);  // bound
  const int threads = static_cast<int>(std::min<int64_t>(p.plan->threads, work));
  switch (cpu_isa()) {
    case CpuIsa::kAvx512:
      decode_attention_avx512(p, threads);
      return;
    case CpuIsa::kAvx2:
      decode_attention_avx2(p, threads);
      return;
    case CpuIsa::kScalar:
      decode_attention_scalar(p, threads);
      return;
  }
}

}  // namespace strata::kernels::cpu
