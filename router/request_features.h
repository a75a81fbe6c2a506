// What the router's length predictor knows about a request before it runs (issue 7): taken
// from the validated request, never from its text beyond the system prompt's hash.
#pragma once

#include <cstdint>

#include "router/api_types.h"
#include "router/scheduling/length_predictor.h"

namespace strata::router {

// template_hash: FNV-1a of the system/developer messages (role and content, in order) of a
// chat request, so requests sharing a system prompt share a histogram; 0 for completions and
// chats without one.
RequestFeatures request_features(const GenerationRequest& request, int64_t prompt_tokens);

}  // namespace strata::router
