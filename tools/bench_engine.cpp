// Offline engine benchmark (no HTTP): the batching engine driven in-process.
//
//   bench_engine --mode trace  : replays prompt/output lengths of an Azure trace, all at
//                                t=0 or at the trace's (scaled) arrival times, with
//                                continuous batching and with static batching (baseline).
//   bench_engine --mode decode : N sequences of P prompt + O output tokens; decode tokens/s.
//
// Prints Markdown rows: output tokens/s, TTFT and ITL p50/p99 (ms), preemptions.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "kernels/ops.h"
#include "tools/bench/bench_model_flags.h"
#include "tools/bench/trace.h"
#include "worker/engine/engine.h"
#include "worker/engine/kv_capacity.h"

namespace {

using namespace strata;
using Clock = std::chrono::steady_clock;

struct Workload {
  std::vector<double> arrival_s;
  std::vector<int32_t> prompt_tokens, output_tokens;
};

struct RunReport {
  double seconds = 0;
  int64_t output_tokens = 0;
  std::vector<double> ttft_s, itl_s;
  int64_t preemptions = 0;
  int64_t decode_tokens = 0;
  double decode_seconds = 0;  // time of steps that ran decode tokens only
  int32_t peak_sequences = 0;  // most sequences one step ran: what the KV cache let run at once
  int64_t kv_blocks = 0;
};

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  return v[i];
}

RunReport run(const LoadedModel& model, const EngineConfig& config, const Workload& w) {
  auto created = Engine::create(model, config);
  if (!created.ok()) {
    std::cerr << created.status().message() << "\n";
    std::exit(2);
  }
  Engine& engine = **created;
  RunReport report;
  std::map<RequestId, double> last_token_s;
  std::map<RequestId, double> arrival;
  size_t next = 0;
  const auto start = Clock::now();
  auto now = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  while (next < w.arrival_s.size() || engine.has_unfinished()) {
    while (next < w.arrival_s.size() && w.arrival_s[next] <= now()) {
      Request r{.id = next + 1};
      for (int32_t i = 0; i < w.prompt_tokens[next]; ++i) {
        r.prompt_ids.push_back(static_cast<int32_t>(3 + (next * 131 + i * 7) % (model.config.vocab_size - 3)));
      }
      r.sampling.temperature = 0.0f;
      r.sampling.ignore_eos = true;
      r.sampling.max_tokens = w.output_tokens[next];
      if (Status s = engine.add_request(std::move(r)); !s.ok()) {
        std::cerr << s.message() << "\n";
        std::exit(2);
      }
      arrival[next + 1] = w.arrival_s[next];
      ++next;
    }
    if (!engine.has_unfinished()) {
      std::this_thread::sleep_for(std::chrono::duration<double>(w.arrival_s[next] - now()));
      continue;
    }
    const auto outputs = engine.step();
    const double t = now();
    const EngineStepStats& st = engine.last_step();
    report.peak_sequences = std::max(report.peak_sequences, st.num_sequences);
    if (st.num_prefill_tokens == 0 && st.num_decode_tokens > 0) {
      report.decode_tokens += st.num_decode_tokens;
      report.decode_seconds += st.seconds;
    }
    for (const SequenceOutput& o : outputs) {
      for (size_t i = 0; i < o.new_tokens.size(); ++i) {
        ++report.output_tokens;
        auto it = last_token_s.find(o.id);
        if (it == last_token_s.end()) {
          report.ttft_s.push_back(t - arrival[o.id]);
        } else {
          report.itl_s.push_back(t - it->second);
        }
        last_token_s[o.id] = t;
      }
    }
  }
  report.seconds = now();
  report.preemptions = engine.stats().num_preemptions;
  report.kv_blocks = engine.num_kv_blocks();
  return report;
}

void print_row(const std::string& label, const RunReport& r) {
  std::cout << fmt::format("| {} | {:.1f} | {:.1f} | {:.0f} | {:.0f} | {:.1f} | {:.1f} | {} |\n", label,
                           r.seconds, r.output_tokens / r.seconds, percentile(r.ttft_s, 0.5) * 1e3,
                           percentile(r.ttft_s, 0.99) * 1e3, percentile(r.itl_s, 0.5) * 1e3,
                           percentile(r.itl_s, 0.99) * 1e3, r.preemptions);
}

std::string default_trace() {
  const char* env = std::getenv("STRATA_SHARED_DIR");
  return (std::filesystem::path(env && *env ? env : "../shared") / "traces" /
          "AzureLLMInferenceTrace_conv_2023.csv").string();
}

// --mode decode: num_seqs sequences of prompt + output tokens, all at t = 0; one Markdown row
// (model | sequences | prompt+output | decode tok/s | overall tok/s | KV dtype | KV blocks |
// most sequences in one step | preemptions).
void run_decode_mode(const LoadedModel& model, EngineConfig config, int num_seqs, int prompt,
                     int output) {
  config.scheduler.max_num_seqs = num_seqs;
  config.scheduler.max_num_batched_tokens = std::max(config.scheduler.max_num_batched_tokens, prompt * num_seqs);
  Workload w;
  for (int i = 0; i < num_seqs; ++i) {
    w.arrival_s.push_back(0);
    w.prompt_tokens.push_back(prompt);
    w.output_tokens.push_back(output);
  }
  const RunReport r = run(model, config, w);
  std::cout << fmt::format("| {} | {} | {}+{} | {:.1f} | {:.1f} | {} | {} | {} | {} |\n", model.config.name,
                           num_seqs, prompt, output, r.decode_tokens / r.decode_seconds,
                           r.output_tokens / r.seconds, dtype_name(kv_dtype(model, config)), r.kv_blocks,
                           r.peak_sequences, r.preemptions);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"strata offline engine benchmark"};
  std::string mode = "trace", trace = default_trace();
  bench::BenchModelFlags model_flags;
  int num_requests = 64, num_seqs = 16, prompt = 128, output = 128;
  double length_scale = 0.125, time_scale = 0.0, kv_cache_mb = 0;
  EngineConfig config;
  config.scheduler.max_num_batched_tokens = 256;
  config.scheduler.max_num_seqs = 64;
  app.add_option("--mode", mode, "trace | decode")->capture_default_str();
  model_flags.add_to(app);
  app.add_option("--trace", trace, "Azure trace CSV")->capture_default_str();
  app.add_option("--num-requests", num_requests, "trace rows replayed")->capture_default_str();
  app.add_option("--length-scale", length_scale, "multiplies the trace's token counts")->capture_default_str();
  app.add_option("--time-scale", time_scale, "0: all arrive at t=0; else arrival times ÷ this")->capture_default_str();
  app.add_option("--num-seqs", num_seqs, "decode mode: sequences")->capture_default_str();
  app.add_option("--prompt-tokens", prompt, "decode mode: prompt tokens")->capture_default_str();
  app.add_option("--output-tokens", output, "decode mode: output tokens")->capture_default_str();
  app.add_option("--max-num-seqs", config.scheduler.max_num_seqs)->capture_default_str();
  app.add_option("--max-num-batched-tokens", config.scheduler.max_num_batched_tokens)->capture_default_str();
  app.add_option("--kv-cache-mb", kv_cache_mb, "KV cache size (0 = engine default)")->capture_default_str();
  app.add_option("--kv-cache-dtype", config.kv_cache_dtype, "auto (the weights'), bf16, fp16, fp32 or int8")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto loaded = model_flags.load();
  if (!loaded.ok()) {
    std::cerr << loaded.status().message() << "\n";
    return 2;
  }
  const LoadedModel& model = **loaded;
  config.kv_cache_bytes = static_cast<int64_t>(kv_cache_mb * 1e6);
  config.device = model.weights.device;
  std::cerr << model.config.summary() << ", " << dtype_name(model.weights.dtype) << ", " << kernels::cpu_isa_name() << " × "
            << kernels::cpu_threads() << " threads\n";

  if (mode == "decode") {
    run_decode_mode(model, config, num_seqs, prompt, output);
    return 0;
  }

  Workload w;
  auto rows = load_trace_csv(trace);
  if (!rows.ok()) {
    std::cerr << rows.status().message() << "\n";
    return 2;
  }
  const int64_t max_len = model.config.max_position_embeddings;
  for (int i = 0; i < num_requests && i < static_cast<int>(rows->size()); ++i) {
    const TraceRequest& r = (*rows)[static_cast<size_t>(i)];
    const int32_t p = std::clamp<int32_t>(static_cast<int32_t>(r.prompt_tokens * length_scale), 1, static_cast<int32_t>(max_len / 2));
    const int32_t o = std::clamp<int32_t>(static_cast<int32_t>(r.output_tokens * length_scale), 1, static_cast<int32_t>(max_len / 2));
    w.arrival_s.push_back(time_scale > 0 ? r.arrival_s / time_scale : 0.0);
    w.prompt_tokens.push_back(p);
    w.output_tokens.push_back(o);
  }
  std::cout << "| batching | seconds | output tok/s | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms | preemptions |\n"
               "|---|---|---|---|---|---|---|---|\n";
  const RunReport continuous = run(model, config, w);
  print_row("continuous", continuous);
  EngineConfig static_config = config;
  static_config.scheduler.static_batching = true;
  const RunReport baseline = run(model, static_config, w);
  print_row("static", baseline);
  std::cout << fmt::format("\ncontinuous / static output tokens/s: {:.2f}x\n",
                           (continuous.output_tokens / continuous.seconds) / (baseline.output_tokens / baseline.seconds));
  return 0;
}
