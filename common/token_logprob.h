// TokenLogprob: a token id and its log-probability — what the sampler reports for the chosen
// token's alternatives, what the wire carries to the router, in one type. The router adds
// the token's text only where it answers (router/api_types.h).
#pragma once

#include <cstdint>

#include <msgpack.hpp>

namespace strata {

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0.0f;
  MSGPACK_DEFINE(id, logprob);  // a pair [id, logprob]
  bool operator==(const TokenLogprob&) const = default;
};

}  // namespace strata
