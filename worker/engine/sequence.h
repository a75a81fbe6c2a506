// Request and Sequence: what a user asked for (immutable) and where the engine is with it.
// A sequence catches up to its token count: num_computed_tokens counts positions already
// in the KV cache; prompt + output tokens minus that is what it still has to run. There is
// no prefill or decode phase: a prefill chunk and a decode token are both "the next
// tokens of a sequence".
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>
#include <vector>

#include "common/block_hash.h"
#include "worker/engine/sampler.h"

namespace strata {

using RequestId = uint64_t;

struct Request {
  RequestId id = 0;
  std::vector<int32_t> prompt_ids;
  SamplingParams sampling;
  std::chrono::steady_clock::time_point arrival = std::chrono::steady_clock::now();
};

enum class SequenceStatus : uint8_t { kWaiting, kRunning, kFinished };

enum class FinishReason : uint8_t { kNone, kStop, kLength, kAbort };
std::string_view finish_reason_name(FinishReason reason);  // "stop", "length", "abort"

struct Sequence {
  explicit Sequence(Request r) : request(std::move(r)) {}

  Request request;
  SequenceStatus status = SequenceStatus::kWaiting;
  int32_t num_computed_tokens = 0;   // positions whose K/V are in the cache
  std::vector<int32_t> output_ids;
  std::vector<int32_t> block_table;  // block ids covering positions [0, blocks · block_size)
  FinishReason finish_reason = FinishReason::kNone;
  int32_t num_preemptions = 0;
  // Prefix caching: the chained hashes of its full blocks as far as they were needed, how
  // many of its table's blocks the cache indexes, and the prompt tokens its first
  // admission found cached (what usage reports as cached_tokens).
  std::vector<BlockHash> block_hashes;
  int32_t num_blocks_indexed = 0;
  int32_t num_cached_tokens = -1;
  // Speculative decoding: the running share of its drafts the target accepted (adaptive k).
  double draft_acceptance = 1.0;
  // What the worker group's ranks hold of it (worker/engine/step_plan.h): announced once it was in
  // a plan, then its first num_tokens_sent tokens and num_blocks_sent table entries.
  bool announced = false;
  int32_t num_tokens_sent = 0;
  int32_t num_blocks_sent = 0;

  RequestId id() const { return request.id; }
  int32_t num_prompt_tokens() const { return static_cast<int32_t>(request.prompt_ids.size()); }
  int32_t num_tokens() const { return num_prompt_tokens() + static_cast<int32_t>(output_ids.size()); }
  int32_t num_uncomputed_tokens() const { return num_tokens() - num_computed_tokens; }
  int32_t token_at(int32_t i) const {
    return i < num_prompt_tokens() ? request.prompt_ids[static_cast<size_t>(i)]
                                   : output_ids[static_cast<size_t>(i - num_prompt_tokens())];
  }
};

}  // namespace strata
