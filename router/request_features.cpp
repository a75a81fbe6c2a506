#include "router/request_features.h"

#include <string_view>

namespace strata::router {
namespace {

// FNV-1a: stable across runs and builds, which a predictor snapshot needs (std::hash is not).
uint64_t fnv1a(std::string_view bytes, uint64_t h) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

RequestFeatures request_features(const GenerationRequest& request, int64_t prompt_tokens) {
  RequestFeatures f{.prompt_tokens = prompt_tokens,
                    .max_tokens = request.sampling.max_tokens,
                    .route = request.route,
                    .user = request.user,
                    .has_stop = !request.stop_strings.empty() ||
                                !request.sampling.stop_token_ids.empty()};
  uint64_t h = 0xcbf29ce484222325ULL;
  bool any = false;
  for (const ChatMessage& m : request.messages) {
    if (m.role != "system" && m.role != "developer") continue;
    any = true;
    h = fnv1a(m.role, h);
    h = fnv1a(std::string_view("\0", 1), h);
    h = fnv1a(m.content, h);
    h = fnv1a(std::string_view("\0", 1), h);
  }
  f.template_hash = any ? h : 0;
  return f;
}

}  // namespace strata::router
