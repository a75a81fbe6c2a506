// Speculative decoding benchmark (no HTTP): the same greedy requests run with speculation off
// and on in one process, so the ratio compares like with like.
//
//   bench_speculative --model builtin:llama-1b --speculative-method self-quantized --num-speculative-tokens 4
//   bench_speculative --model ../shared/models/stories15M.bin --speculative-method ngram --prompt repeat
//
// For each --num-seqs value it prints one Markdown row: decode tokens/s off and on and their
// ratio, drafts proposed, acceptance rate, mean tokens per verification, and whether every
// output was identical to the run without speculation (it must be: greedy verification keeps
// exactly the target's tokens). Prompts: "random" ids, or "repeat" (a random block repeated,
// text that prompt lookup can follow).
#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "common/config_fields.h"
#include "kernels/ops.h"
#include "tools/bench/bench_model_flags.h"
#include "worker/engine/engine.h"
#include "worker/engine/speculative/speculative_config.h"

namespace {

using namespace strata;
using Clock = std::chrono::steady_clock;

struct Run {
  std::map<RequestId, std::vector<int32_t>> outputs;
  int64_t decode_tokens = 0;   // output tokens of steps after every prompt was in
  double decode_seconds = 0;
  SchedulerStats stats;
};

std::vector<int32_t> make_prompt(const std::string& kind, int length, int seed, int32_t vocab) {
  std::vector<int32_t> ids;
  const int block = kind == "repeat" ? std::max(1, length / 4) : length;
  for (int i = 0; i < length; ++i) {
    const int j = i % block;
    ids.push_back(static_cast<int32_t>(3 + (seed * 7919 + j * 104729 + j * j * 31) % (vocab - 3)));
  }
  return ids;
}

Run run(const LoadedModel& model, const LoadedModel* draft, EngineConfig config, int num_seqs,
        const std::string& prompt_kind, int prompt_tokens, int output_tokens) {
  config.scheduler.max_num_seqs = num_seqs;
  config.scheduler.max_num_batched_tokens = std::max(config.scheduler.max_num_batched_tokens, prompt_tokens * num_seqs);
  auto created = Engine::create(model, config, nullptr, draft);
  if (!created.ok()) {
    std::cerr << created.status().message() << "\n";
    std::exit(2);
  }
  Engine& engine = **created;
  for (int i = 0; i < num_seqs; ++i) {
    Request r{.id = static_cast<RequestId>(i + 1),
              .prompt_ids = make_prompt(prompt_kind, prompt_tokens, i, model.config.vocab_size)};
    r.sampling.temperature = 0.0f;
    r.sampling.ignore_eos = true;
    r.sampling.max_tokens = output_tokens;
    if (Status s = engine.add_request(std::move(r)); !s.ok()) {
      std::cerr << s.message() << "\n";
      std::exit(2);
    }
  }
  Run result;
  while (engine.has_unfinished()) {
    const auto start = Clock::now();
    const std::vector<SequenceOutput> outputs = engine.step();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const bool decode_only = engine.last_step().num_prefill_tokens == 0;
    for (const SequenceOutput& o : outputs) {
      for (const SampledToken& t : o.new_tokens) result.outputs[o.id].push_back(t.id);
      if (decode_only) result.decode_tokens += static_cast<int64_t>(o.new_tokens.size());
    }
    if (decode_only) result.decode_seconds += seconds;
  }
  result.stats = engine.stats();
  return result;
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoi(item));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"strata speculative decoding benchmark: greedy decode with speculation off and on"};
  bench::BenchModelFlags model_flags;
  model_flags.add_to(app, /*offer_device=*/false);
  EngineConfig config;
  config.scheduler.speculative_max_batch = 1 << 20;  // measure every batch size as asked
  {
    config::CliBinder binder(app);
    auto spec = config::only(binder, {"speculative_method", "speculative_model", "num_speculative_tokens",
                                      "speculative_max_batch", "speculative_adaptive", "speculative_governor",
                                      "ngram_prompt_lookup_min", "ngram_prompt_lookup_max"});
    config.visit_fields(spec);
  }
  std::string batches = "1,4,16", prompt_kind = "random";
  int prompt_tokens = 64, output_tokens = 64;
  double kv_cache_mb = 256;
  app.add_option("--num-seqs", batches, "comma-separated batch sizes")->capture_default_str();
  app.add_option("--prompt", prompt_kind, "random | repeat")->capture_default_str();
  app.add_option("--prompt-tokens", prompt_tokens)->capture_default_str();
  app.add_option("--output-tokens", output_tokens)->capture_default_str();
  app.add_option("--kv-cache-mb", kv_cache_mb)->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto loaded = model_flags.load();
  if (!loaded.ok()) {
    std::cerr << loaded.status().message() << "\n";
    return 2;
  }
  const LoadedModel& model = **loaded;
  // The draft loads like the target: load() already checked these options.
  auto draft = load_draft_model(config.speculative, model_flags.settings.model, *model_flags.load_options());
  if (!draft.ok()) {
    std::cerr << draft.status().message() << "\n";
    return 2;
  }
  config.kv_cache_bytes = static_cast<int64_t>(kv_cache_mb * 1e6);
  std::cerr << model.config.summary() << ", " << dtype_name(model.weights.dtype) << ", "
            << kernels::cpu_isa_name() << " × " << kernels::cpu_threads() << " threads\n";
  std::cout << "| model | method | k | seqs | decode tok/s off | on | on/off | drafts | acceptance | tokens/verification | identical |\n"
               "|---|---|---|---|---|---|---|---|---|---|---|\n";
  EngineConfig off = config;
  off.speculative.method = "none";
  for (int num_seqs : parse_list(batches)) {
    const Run base = run(model, nullptr, off, num_seqs, prompt_kind, prompt_tokens, output_tokens);
    const Run spec = run(model, draft->get(), config, num_seqs, prompt_kind, prompt_tokens, output_tokens);
    const SchedulerStats& s = spec.stats;
    const double off_tps = base.decode_tokens / base.decode_seconds;
    const double on_tps = spec.decode_tokens / spec.decode_seconds;
    std::cout << fmt::format(
        "| {} | {} | {} | {} | {:.2f} | {:.2f} | {:.2f}× | {} | {:.2f} | {:.2f} | {} |\n", model.config.name,
        config.speculative.method, config.scheduler.num_speculative_tokens, num_seqs, off_tps, on_tps,
        on_tps / off_tps, s.spec_draft_tokens,
        s.spec_draft_tokens > 0 ? static_cast<double>(s.spec_accepted_tokens) / s.spec_draft_tokens : 0.0,
        s.spec_verifications > 0 ? 1.0 + static_cast<double>(s.spec_accepted_tokens) / s.spec_verifications : 0.0,
        base.outputs == spec.outputs ? "yes" : "NO");
    std::cout.flush();
    if (base.outputs != spec.outputs) return 1;
  }
  return 0;
}
