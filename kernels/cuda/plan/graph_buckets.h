// Batch-size buckets for CUDA-graph decode steps. A decode step's launches depend on the
// batch size, so one graph is captured per bucket; a step of batch b replays the smallest
// bucket >= b with its inputs padded (padding rows have slot -1 and a context of 1 token).
// Buckets follow vLLM's shape: 1, 2, 4, then every `stride` up to the maximum, which is
// always a bucket itself. Plain C++, unit-tested on the CPU.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace strata::kernels::cuda {

// Ascending, unique, all in [1, max_batch]; empty when max_batch < 1.
std::vector<int> plan_graph_buckets(int max_batch, int stride = 8);

// The smallest bucket >= batch; nullopt when batch < 1 or above the largest bucket (the
// step then runs eagerly).
std::optional<int> graph_bucket_for(const std::vector<int>& buckets, int batch);

}  // namespace strata::kernels::cuda
