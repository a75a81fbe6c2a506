#include "kernels/cuda/plan/graph_buckets.h"

#include <algorithm>

#include "common/check.h"

namespace strata::kernels::cuda {

std::vector<int> plan_graph_buckets(int max_batch, int stride) {
  STRATA_CHECK(stride > 0);
  std::vector<int> buckets;
  for (int b : {1, 2, 4}) {
    if (b <= max_batch) buckets.push_back(b);
  }
  for (int b = stride; b <= max_batch; b += stride) {
    if (b > buckets.back()) buckets.push_back(b);
  }
  if (max_batch >= 1 && buckets.back() != max_batch) buckets.push_back(max_batch);
  return buckets;
}

std::optional<int> graph_bucket_for(const std::vector<int>& buckets, int batch) {
  if (batch < 1) return std::nullopt;
  const auto it = std::lower_bound(buckets.begin(), buckets.end(), batch);
  if (it == buckets.end()) return std::nullopt;
  return *it;
}

}  // namespace strata::kernels::cuda
