#include "worker/group_plan.h"

#include "common/check.h"

namespace strata {
namespace {

void broadcast_bytes(Communicator& world, std::string& bytes) {
  int64_t size = static_cast<int64_t>(bytes.size());
  world.broadcast(&size, sizeof size, 0);
  bytes.resize(static_cast<size_t>(size));
  world.broadcast(bytes.data(), bytes.size(), 0);
}

template <typename T>
std::string pack(const T& value) {
  msgpack::sbuffer buffer;
  msgpack::pack(buffer, value);
  return std::string(buffer.data(), buffer.size());
}

template <typename T>
T unpack(const std::string& bytes) {
  // The ranks of one group run the same binary: a bad message is a bug, not input.
  msgpack::object_handle handle = msgpack::unpack(bytes.data(), bytes.size());
  return handle.get().as<T>();
}

}  // namespace

void broadcast_plan(Communicator& world, const GroupPlan& plan) {
  std::string bytes = pack(plan);
  broadcast_bytes(world, bytes);
}

GroupPlan receive_plan(Communicator& world) {
  std::string bytes;
  broadcast_bytes(world, bytes);
  return unpack<GroupPlan>(bytes);
}

void send_samples(Communicator& world, const SampledRows& rows, int dest) {
  const std::string bytes = pack(rows);
  int64_t size = static_cast<int64_t>(bytes.size());
  world.send(&size, sizeof size, dest);
  world.send(bytes.data(), bytes.size(), dest);
}

SampledRows receive_samples(Communicator& world, int src) {
  int64_t size = 0;
  world.recv(&size, sizeof size, src);
  std::string bytes(static_cast<size_t>(size), '\0');
  world.recv(bytes.data(), bytes.size(), src);
  return unpack<SampledRows>(bytes);
}

void SamplingMirror::apply(const GroupPlan& plan) {
  for (const wire::WireRequest& r : plan.new_requests) {
    STRATA_CHECK(r.sampling.seed.has_value());
    sequences_[r.id] = {.prompt_ids = r.prompt_ids, .output_ids = {}, .sampling = r.sampling,
                        .rng = SamplerRng(*r.sampling.seed)};
  }
  for (uint64_t id : plan.finished_ids) sequences_.erase(id);
}

SampledRows SamplingMirror::sample(const GroupPlan& plan, const ForwardBatch& batch,
                                   const std::vector<float>& logits, int64_t vocab) {
  SampledRows out;
  size_t row = 0;
  for (size_t s = 0; s < batch.sequences.size(); ++s) {
    if (!batch.sequences[s].want_logits) continue;
    auto it = sequences_.find(plan.sequence_ids[s]);
    STRATA_CHECK(it != sequences_.end());
    MirrorSequence& seq = it->second;
    const std::span<const float> row_logits(logits.data() + row * static_cast<size_t>(vocab),
                                            static_cast<size_t>(vocab));
    SampledToken t = sample_token(row_logits, seq.sampling, seq.prompt_ids, seq.output_ids, seq.rng);
    seq.output_ids.push_back(t.id);
    SampledRow r{.id = t.id, .logprob = t.logprob};
    for (const TokenLogprob& top : t.top_logprobs) r.top.push_back({.id = top.id, .logprob = top.logprob});
    out.rows.push_back(std::move(r));
    ++row;
  }
  return out;
}

}  // namespace strata
