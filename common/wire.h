// The router ↔ worker-group wire protocol: every message both sides exchange over ZeroMQ,
// defined once here and encoded with msgpack.
//
// Framing: one ZeroMQ frame per message (the ROUTER socket adds the peer's identity frame
// in front), holding the msgpack array [protocol_version, type, payload]:
//   protocol_version  uint32, kProtocolVersion; a peer speaking another version is refused
//   type              uint8, MessageType
//   payload           a msgpack map of the message's fields (MSGPACK_DEFINE_MAP): keys are
//                     field names, so within one version a field can be added without
//                     breaking older readers (unknown keys are skipped, missing ones keep
//                     their defaults).
//
// Directions: worker → router: Hello, StepOutputs, Heartbeat. router → worker: AddRequests,
// Abort, Shutdown. decode() never throws: malformed bytes give a DataLoss Status.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <msgpack.hpp>

#include "common/sampling_params.h"
#include "common/status.h"
#include "common/token_logprob.h"

// SamplingParams travels as a map of every one of its fields, under the fields' names.
// Defined here, not in sampling_params.h, so that only the wire format depends on msgpack.
namespace strata::wire::detail {
template <typename Params>  // SamplingParams or const SamplingParams
auto sampling_fields(Params& p) {
  return msgpack::type::make_define_map(
      "temperature", p.temperature, "top_k", p.top_k, "top_p", p.top_p, "min_p", p.min_p,
      "repetition_penalty", p.repetition_penalty, "presence_penalty", p.presence_penalty,
      "frequency_penalty", p.frequency_penalty, "seed", p.seed, "max_tokens", p.max_tokens,
      "stop_token_ids", p.stop_token_ids, "ignore_eos", p.ignore_eos, "logprobs", p.logprobs,
      "stop_after_tokens", p.stop_after_tokens, "speculative", p.speculative);
}
}  // namespace strata::wire::detail

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
namespace adaptor {
template <>
struct convert<strata::SamplingParams> {
  const msgpack::object& operator()(const msgpack::object& o, strata::SamplingParams& v) const {
    strata::wire::detail::sampling_fields(v).msgpack_unpack(o);
    return o;
  }
};
template <>
struct pack<strata::SamplingParams> {
  template <typename Stream>
  packer<Stream>& operator()(packer<Stream>& o, const strata::SamplingParams& v) const {
    strata::wire::detail::sampling_fields(v).msgpack_pack(o);
    return o;
  }
};
template <>
struct object_with_zone<strata::SamplingParams> {
  void operator()(msgpack::object::with_zone& o, const strata::SamplingParams& v) const {
    strata::wire::detail::sampling_fields(v).msgpack_object(&o, o.zone);
  }
};
}  // namespace adaptor
}  // MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS)
}  // namespace msgpack

namespace strata::wire {

inline constexpr uint32_t kProtocolVersion = 1;
// Where the router binds its ROUTER socket and worker groups connect, unless told otherwise:
// one default for both ends (router: --zmq-endpoint, worker: --router).
inline constexpr const char* kDefaultRouterEndpoint = "tcp://127.0.0.1:5557";

// The routing ids of a group's connections: its driver's is the group id; the driver's
// heartbeat thread and every other rank (which sends nothing, so that its death is seen at
// once) have their own.
inline std::string heartbeat_identity(const std::string& group_id) { return group_id + "/heartbeat"; }
inline std::string rank_identity(const std::string& group_id, int rank) {
  return group_id + "/rank" + std::to_string(rank);
}

// The order matches the alternatives of `Message` below.
enum class MessageType : uint8_t {
  kHello = 0,
  kAddRequests = 1,
  kAbort = 2,
  kStepOutputs = 3,
  kHeartbeat = 4,
  kShutdown = 5,
};
std::string_view message_type_name(MessageType type);  // "Hello", "AddRequests", ...

// Values of TokenOutput::finish_reason.
inline constexpr std::string_view kFinishNone = "";
inline constexpr std::string_view kFinishStop = "stop";
inline constexpr std::string_view kFinishLength = "length";
inline constexpr std::string_view kFinishAbort = "abort";
inline constexpr std::string_view kFinishError = "error";  // see TokenOutput::error

// KV-cache and queue state of one worker group, as of the end of its last step.
struct KvStats {
  int64_t total_blocks = 0;
  // Held by no sequence: never used, or cached for a prefix (cached_blocks of them), which
  // the pool reclaims when it needs to.
  int64_t free_blocks = 0;
  int64_t cached_blocks = 0;
  int64_t num_running = 0;
  int64_t num_waiting = 0;
  int64_t num_preemptions = 0;  // since the worker started
  // Prefix caching, since the worker started: prompt tokens looked up, tokens found cached,
  // cached blocks evicted.
  int64_t prefix_cache_queries = 0;
  int64_t prefix_cache_hits = 0;
  int64_t prefix_cache_evictions = 0;
  // Speculative decoding, since the worker started: verification steps (a sequence's decode
  // token with its drafts), draft tokens proposed, and of those accepted.
  int64_t spec_verifications = 0;
  int64_t spec_draft_tokens = 0;
  int64_t spec_accepted_tokens = 0;
  MSGPACK_DEFINE_MAP(total_blocks, free_blocks, cached_blocks, num_running, num_waiting, num_preemptions,
                     prefix_cache_queries, prefix_cache_hits, prefix_cache_evictions,
                     spec_verifications, spec_draft_tokens, spec_accepted_tokens);
};

// worker → router, once the model is loaded and warmed up (ready = true), and again every
// few seconds so that a restarted router learns about groups already running.
struct Hello {
  std::string group_id{};
  std::string model_name{};
  uint64_t instance_id = 0;  // random per worker process: a new value means a restart
  int64_t max_model_len = 0;
  int64_t vocab_size = 0;
  int32_t block_size = 0;
  int64_t total_blocks = 0;
  bool ready = false;  // model loaded and one warm-up forward done
  int32_t tp = 1;      // tensor-parallel ranks in the group
  int32_t pp = 1;      // pipeline-parallel stages in the group
  MSGPACK_DEFINE_MAP(group_id, model_name, instance_id, max_model_len, vocab_size, block_size,
                     total_blocks, ready, tp, pp);
};

// One request as the worker needs it: tokens in, sampling settings, no text.
struct WireRequest {
  uint64_t id = 0;  // unique among the router's in-flight requests
  std::vector<int32_t> prompt_ids{};
  SamplingParams sampling{};
  int64_t arrival_unix_ms = 0;  // when the router received it
  MSGPACK_DEFINE_MAP(id, prompt_ids, sampling, arrival_unix_ms);
};

// router → worker: requests to start, in arrival order.
struct AddRequests {
  std::vector<WireRequest> requests{};
  MSGPACK_DEFINE_MAP(requests);
};

// router → worker: requests to stop; each is answered with finish_reason "abort" (or not
// at all when it had already finished).
struct Abort {
  std::vector<uint64_t> ids{};
  MSGPACK_DEFINE_MAP(ids);
};

// What one request produced in one step: usually one token; none when it only finished
// (abort, error). A request's last TokenOutput is the one with a finish_reason.
struct TokenOutput {
  uint64_t id = 0;
  std::vector<int32_t> token_ids{};
  std::vector<float> logprobs{};  // per token; empty unless asked for
  // Per token, most likely first; empty unless asked for with logprobs > 0.
  std::vector<std::vector<TokenLogprob>> top_logprobs{};
  std::string finish_reason{};  // "" (still running), "stop", "length", "abort" or "error"
  std::string error{};          // with "error": what went wrong and what to do
  int32_t num_prompt_tokens = 0;
  int32_t num_cached_tokens = 0;  // prompt tokens served from the prefix cache
  int32_t num_output_tokens = 0;  // generated so far, these tokens included
  MSGPACK_DEFINE_MAP(id, token_ids, logprobs, top_logprobs, finish_reason, error,
                     num_prompt_tokens, num_cached_tokens, num_output_tokens);
  bool finished() const { return !finish_reason.empty(); }
};

// worker → router, after every step that produced an output (and at once for requests
// refused on arrival).
struct StepOutputs {
  std::string group_id{};
  uint64_t step = 0;  // engine steps since the worker started
  std::vector<TokenOutput> outputs{};
  KvStats kv{};
  double step_seconds = 0;
  int32_t num_batched_tokens = 0;  // decode + prefill tokens in the step
  int32_t num_decode_tokens = 0;
  int32_t num_prefill_tokens = 0;
  MSGPACK_DEFINE_MAP(group_id, step, outputs, kv, step_seconds, num_batched_tokens,
                     num_decode_tokens, num_prefill_tokens);
};

// worker → router, every heartbeat_ms, busy or idle.
struct Heartbeat {
  std::string group_id{};
  KvStats kv{};
  int64_t unix_ms = 0;  // the worker's clock when sent
  MSGPACK_DEFINE_MAP(group_id, kv, unix_ms);
};

// router → worker: finish the serving loop and exit.
struct Shutdown {
  std::string reason{};  // for the worker's log
  MSGPACK_DEFINE_MAP(reason);
};

using Message = std::variant<Hello, AddRequests, Abort, StepOutputs, Heartbeat, Shutdown>;

inline MessageType message_type(const Message& message) {
  return static_cast<MessageType>(message.index());
}

// [kProtocolVersion, type, payload] as bytes.
std::string encode(const Message& message);

// Checks the framing, the version and the type; never throws. Errors: DataLoss for bytes
// that are not a well-formed message, Unimplemented for another protocol version.
StatusOr<Message> decode(std::string_view bytes);

// Milliseconds since the Unix epoch (for arrival_unix_ms and Heartbeat::unix_ms).
int64_t unix_ms_now();

}  // namespace strata::wire
