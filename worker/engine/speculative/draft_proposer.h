// DraftProposer: what guesses the tokens a sequence will produce next, for speculative
// decoding. The scheduler asks it once per step for the running sequences that decode
// (worker/engine/scheduler.h); the step then runs each sequence's decode token and its drafts as
// query rows of one forward pass, and the rank that samples keeps the prefix the target
// model agrees with (verify_draft_token, worker/engine/sampler.h). A proposer's guesses only
// change how many tokens a step yields, never which: every output token is the target's.
//
// Proposers are deterministic (a draft is a point guess, q one-hot), which is what lets
// verification need nothing from the proposer but the draft ids, on any rank.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "worker/engine/sequence.h"

namespace strata {

struct DraftRequest {
  // Its tokens so far (the last one is this step's decode token) and its block table, which
  // already covers num_tokens() + max_drafts positions.
  const Sequence* seq = nullptr;
  int32_t max_drafts = 0;
  std::vector<int32_t> drafts;  // out: at most max_drafts
};

class DraftProposer {
 public:
  virtual ~DraftProposer() = default;
  // Fills each request's drafts (none where it has no guess).
  virtual void propose(std::span<DraftRequest> requests) = 0;
  // `id` lost its KV blocks (preempted) or is gone: whatever the proposer keeps for it is stale.
  virtual void forget(RequestId id) { (void)id; }
};

}  // namespace strata
