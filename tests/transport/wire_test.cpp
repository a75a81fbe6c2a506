// The wire format: every message survives encode → decode with every field intact, and bytes
// that are not a message (garbage, truncation, wrong version or type) give an error, never a
// crash or an exception.
#include "common/wire.h"

#include <random>
#include <string>

#include <gtest/gtest.h>

namespace strata::wire {
namespace {

template <typename T>
T round_trip(const T& message) {
  const std::string bytes = encode(message);
  StatusOr<Message> decoded = decode(bytes);
  EXPECT_TRUE(decoded.ok()) << decoded.status().to_string();
  if (!decoded.ok()) return {};
  EXPECT_TRUE(std::holds_alternative<T>(*decoded)) << "got type index " << decoded->index();
  if (!std::holds_alternative<T>(*decoded)) return {};
  return std::get<T>(std::move(*decoded));
}

KvStats sample_kv() {
  return {.total_blocks = 1000, .free_blocks = 321, .num_running = 7, .num_waiting = 3,
          .num_preemptions = 12};
}

void expect_kv_eq(const KvStats& a, const KvStats& b) {
  EXPECT_EQ(a.total_blocks, b.total_blocks);
  EXPECT_EQ(a.free_blocks, b.free_blocks);
  EXPECT_EQ(a.num_running, b.num_running);
  EXPECT_EQ(a.num_waiting, b.num_waiting);
  EXPECT_EQ(a.num_preemptions, b.num_preemptions);
}

TEST(Wire, HelloRoundTripsEveryField) {
  const Hello in{.group_id = "g7", .model_name = "builtin:tiny", .instance_id = 0xdeadbeefcafeull,
                 .max_model_len = 2048, .vocab_size = 512, .block_size = 16,
                 .total_blocks = 4096, .ready = true, .tp = 2, .pp = 4};
  const Hello out = round_trip(in);
  EXPECT_EQ(out.group_id, in.group_id);
  EXPECT_EQ(out.model_name, in.model_name);
  EXPECT_EQ(out.instance_id, in.instance_id);
  EXPECT_EQ(out.max_model_len, in.max_model_len);
  EXPECT_EQ(out.vocab_size, in.vocab_size);
  EXPECT_EQ(out.block_size, in.block_size);
  EXPECT_EQ(out.total_blocks, in.total_blocks);
  EXPECT_EQ(out.ready, in.ready);
  EXPECT_EQ(out.tp, in.tp);
  EXPECT_EQ(out.pp, in.pp);
  EXPECT_EQ(message_type(Message(in)), MessageType::kHello);
}

TEST(Wire, AddRequestsRoundTripsEverySamplingField) {
  AddRequests in;
  in.requests.push_back({.id = 1, .prompt_ids = {1, 2, 3}, .arrival_unix_ms = 1700000000123});
  WireRequest r{.id = 0xffffffffffull, .prompt_ids = {5, 0, 511}, .arrival_unix_ms = 42};
  r.sampling = {.temperature = 0.7f, .top_k = 40, .top_p = 0.9f, .min_p = 0.05f,
                .repetition_penalty = 1.1f, .presence_penalty = -0.5f,
                .frequency_penalty = 1.5f, .seed = 1234567890123ull, .max_tokens = 77,
                .stop_token_ids = {2, 9}, .ignore_eos = true, .logprobs = 5};
  in.requests.push_back(r);
  const AddRequests out = round_trip(in);
  ASSERT_EQ(out.requests.size(), 2u);
  EXPECT_EQ(out.requests[0].id, 1u);
  EXPECT_EQ(out.requests[0].prompt_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_FALSE(out.requests[0].sampling.seed.has_value());
  EXPECT_EQ(out.requests[0].arrival_unix_ms, 1700000000123);
  const WireRequest& o = out.requests[1];
  EXPECT_EQ(o.id, r.id);
  EXPECT_EQ(o.prompt_ids, r.prompt_ids);
  EXPECT_EQ(o.arrival_unix_ms, r.arrival_unix_ms);
  EXPECT_EQ(o.sampling.temperature, r.sampling.temperature);
  EXPECT_EQ(o.sampling.top_k, r.sampling.top_k);
  EXPECT_EQ(o.sampling.top_p, r.sampling.top_p);
  EXPECT_EQ(o.sampling.min_p, r.sampling.min_p);
  EXPECT_EQ(o.sampling.repetition_penalty, r.sampling.repetition_penalty);
  EXPECT_EQ(o.sampling.presence_penalty, r.sampling.presence_penalty);
  EXPECT_EQ(o.sampling.frequency_penalty, r.sampling.frequency_penalty);
  EXPECT_EQ(o.sampling.seed, r.sampling.seed);
  EXPECT_EQ(o.sampling.max_tokens, r.sampling.max_tokens);
  EXPECT_EQ(o.sampling.stop_token_ids, r.sampling.stop_token_ids);
  EXPECT_EQ(o.sampling.ignore_eos, r.sampling.ignore_eos);
  EXPECT_EQ(o.sampling.logprobs, r.sampling.logprobs);
}

TEST(Wire, AbortShutdownAndHeartbeatRoundTrip) {
  EXPECT_EQ(round_trip(Abort{.ids = {3, 1, 0xffffffffffffffffull}}).ids,
            (std::vector<uint64_t>{3, 1, 0xffffffffffffffffull}));
  EXPECT_EQ(round_trip(Shutdown{.reason = "router exiting"}).reason, "router exiting");
  const Heartbeat hb = round_trip(Heartbeat{.group_id = "g1", .kv = sample_kv(), .unix_ms = 99});
  EXPECT_EQ(hb.group_id, "g1");
  EXPECT_EQ(hb.unix_ms, 99);
  expect_kv_eq(hb.kv, sample_kv());
}

TEST(Wire, StepOutputsRoundTripsTokensLogprobsAndStats) {
  StepOutputs in{.group_id = "g0", .step = 123456, .kv = sample_kv(), .step_seconds = 0.0125,
                 .num_batched_tokens = 70, .num_decode_tokens = 6, .num_prefill_tokens = 64};
  in.outputs.push_back({.id = 9, .token_ids = {17}, .logprobs = {-0.25f},
                        .top_logprobs = {{{17, -0.25f}, {4, -1.5f}}}, .num_prompt_tokens = 5,
                        .num_output_tokens = 1});
  in.outputs.push_back({.id = 10, .finish_reason = "error", .error = "prompt too long"});
  in.outputs.push_back({.id = 11, .token_ids = {3}, .finish_reason = "length",
                        .num_prompt_tokens = 2, .num_output_tokens = 16});
  const StepOutputs out = round_trip(in);
  EXPECT_EQ(out.group_id, "g0");
  EXPECT_EQ(out.step, 123456u);
  EXPECT_EQ(out.step_seconds, 0.0125);
  EXPECT_EQ(out.num_batched_tokens, 70);
  EXPECT_EQ(out.num_decode_tokens, 6);
  EXPECT_EQ(out.num_prefill_tokens, 64);
  expect_kv_eq(out.kv, sample_kv());
  ASSERT_EQ(out.outputs.size(), 3u);
  EXPECT_EQ(out.outputs[0].token_ids, (std::vector<int32_t>{17}));
  EXPECT_EQ(out.outputs[0].logprobs, (std::vector<float>{-0.25f}));
  ASSERT_EQ(out.outputs[0].top_logprobs.size(), 1u);
  EXPECT_EQ(out.outputs[0].top_logprobs[0], (std::vector<TokenLogprob>{{17, -0.25f}, {4, -1.5f}}));
  EXPECT_FALSE(out.outputs[0].finished());
  EXPECT_EQ(out.outputs[0].num_prompt_tokens, 5);
  EXPECT_EQ(out.outputs[0].num_output_tokens, 1);
  EXPECT_EQ(out.outputs[1].finish_reason, kFinishError);
  EXPECT_EQ(out.outputs[1].error, "prompt too long");
  EXPECT_TRUE(out.outputs[1].token_ids.empty());
  EXPECT_EQ(out.outputs[2].finish_reason, kFinishLength);
  EXPECT_EQ(out.outputs[2].num_output_tokens, 16);
}

TEST(Wire, OtherProtocolVersionIsRefused) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> packer(buffer);
  packer.pack_array(3);
  packer.pack(kProtocolVersion + 1);
  packer.pack(static_cast<uint8_t>(MessageType::kShutdown));
  packer.pack(Shutdown{});
  StatusOr<Message> decoded = decode(std::string_view(buffer.data(), buffer.size()));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(decoded.status().message().find("version 2"), std::string::npos)
      << decoded.status().message();
}

TEST(Wire, UnknownTypeAndMismatchedPayloadAreErrors) {
  {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> packer(buffer);
    packer.pack_array(3);
    packer.pack(kProtocolVersion);
    packer.pack(uint8_t{200});
    packer.pack(Shutdown{});
    EXPECT_EQ(decode(std::string_view(buffer.data(), buffer.size())).status().code(),
              StatusCode::kDataLoss);
  }
  {
    // A Heartbeat payload whose kv is a string.
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> packer(buffer);
    packer.pack_array(3);
    packer.pack(kProtocolVersion);
    packer.pack(static_cast<uint8_t>(MessageType::kHeartbeat));
    packer.pack_map(1);
    packer.pack(std::string("kv"));
    packer.pack(std::string("not a map"));
    const StatusOr<Message> decoded = decode(std::string_view(buffer.data(), buffer.size()));
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(decoded.status().message().find("Heartbeat"), std::string::npos);
  }
}

TEST(Wire, MissingFieldsKeepDefaultsAndUnknownFieldsAreSkipped) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> packer(buffer);
  packer.pack_array(3);
  packer.pack(kProtocolVersion);
  packer.pack(static_cast<uint8_t>(MessageType::kHello));
  packer.pack_map(2);
  packer.pack(std::string("group_id"));
  packer.pack(std::string("g3"));
  packer.pack(std::string("a_field_from_the_future"));
  packer.pack(42);
  const StatusOr<Message> decoded = decode(std::string_view(buffer.data(), buffer.size()));
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  const Hello& hello = std::get<Hello>(*decoded);
  EXPECT_EQ(hello.group_id, "g3");
  EXPECT_EQ(hello.tp, 1);
  EXPECT_FALSE(hello.ready);
}

TEST(Wire, GarbageBytesGiveErrorsNotCrashes) {
  EXPECT_FALSE(decode("").ok());
  EXPECT_FALSE(decode("hello, world").ok());
  EXPECT_FALSE(decode(std::string("\xc1", 1)).ok());  // a byte msgpack never uses
  // An array header claiming 2^32-1 elements, with nothing behind it.
  EXPECT_FALSE(decode(std::string("\xdd\xff\xff\xff\xff", 5)).ok());
  // A string header claiming 4 GiB.
  EXPECT_FALSE(decode(std::string("\x93\x01\x03\xdb\xff\xff\xff\xff", 8)).ok());

  // Every truncation of a real message, and many random corruptions of it.
  StepOutputs step{.group_id = "g0", .step = 5, .kv = sample_kv()};
  step.outputs.push_back({.id = 1, .token_ids = {1, 2}, .logprobs = {-1.0f, -2.0f},
                          .top_logprobs = {{{1, -1.0f}}, {{2, -2.0f}}}});
  const std::string bytes = encode(step);
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(decode(std::string_view(bytes.data(), n)).ok()) << "truncated to " << n;
  }
  EXPECT_FALSE(decode(bytes + "x").ok());  // trailing bytes
  std::mt19937 rng(7);
  int decoded_ok = 0;
  for (int trial = 0; trial < 5000; ++trial) {
    std::string corrupted = bytes;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      corrupted[rng() % corrupted.size()] = static_cast<char>(rng() & 0xff);
    }
    decoded_ok += decode(corrupted).ok() ? 1 : 0;  // either outcome is fine; no crash
  }
  for (int trial = 0; trial < 2000; ++trial) {
    std::string random(1 + rng() % 64, '\0');
    for (char& c : random) c = static_cast<char>(rng() & 0xff);
    decoded_ok += decode(random).ok() ? 1 : 0;
  }
  SUCCEED() << decoded_ok << " corrupted inputs still decoded";
}

}  // namespace
}  // namespace strata::wire
