// Writes one encoded frame of every wire message type into the directory given, as the seed
// corpus of fuzz_wire (frames written by the real encoder, so the fuzzer starts from valid
// msgpack and mutates from there).
#include <filesystem>
#include <fstream>
#include <iostream>

#include "common/wire.h"

int main(int argc, char** argv) {
  using namespace strata::wire;
  if (argc != 2) {
    std::cerr << "usage: wire_seeds DIR\n";
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  strata::SamplingParams sampling;
  sampling.temperature = 0.7f;
  sampling.stop_token_ids = {2, 7};
  TokenOutput output{.id = 9, .token_ids = {5}, .logprobs = {-0.25f}, .top_logprobs = {{}},
                     .finish_reason = "stop", .num_prompt_tokens = 3, .num_output_tokens = 1};
  const KvStats kv{.total_blocks = 64, .free_blocks = 60, .num_running = 1};
  const Message messages[] = {
      Hello{.group_id = "g0", .model_name = "m", .instance_id = 42, .max_model_len = 128,
            .vocab_size = 512, .block_size = 16, .total_blocks = 64, .ready = true},
      AddRequests{.requests = {WireRequest{.id = 9, .prompt_ids = {1, 2, 3}, .sampling = sampling}}},
      Abort{.ids = {9, 10}},
      StepOutputs{.group_id = "g0", .step = 4, .outputs = {output}, .kv = kv, .step_seconds = 0.01},
      Heartbeat{.group_id = "g0", .kv = kv, .unix_ms = 1764633600000},
      Shutdown{.reason = "test"},
  };
  int i = 0;
  for (const Message& m : messages) {
    std::ofstream(dir / ("type" + std::to_string(i++) + ".msgpack"), std::ios::binary) << encode(m);
  }
  return 0;
}
