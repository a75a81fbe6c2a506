// The backend-independent half of plan_attention (kernels/ops.h): every backend's planner
// starts a plan with start_attention_plan, adds its own work split (items, splits,
// threads, workspace), and ends with write_attention_metadata, so the metadata image and
// its binding are the same on every backend; every run checks its params against the plan
// the same way.
#pragma once

#include "kernels/ops.h"

namespace strata::kernels {

// Resets `plan` for `p` (keeping its vectors' capacity) and checks the shape and counts.
void start_attention_plan(const AttentionPlanParams& p, AttentionPlan& plan);
// Lays out the metadata image: p's host sequences, then plan.prefill_items.
void write_attention_metadata(const AttentionPlanParams& p, AttentionPlan& plan);
// A run's invariant: p carries a plan made for its shape, a workspace when the plan needs
// one, and a KV cache dtype the kernels read.
void check_attention_run(const PagedAttentionParams& p);

}  // namespace strata::kernels
