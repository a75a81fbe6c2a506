// `strata bench`: a load generator for any OpenAI-compatible server (strata, vLLM,
// llama.cpp's server). It sends streaming /v1/completions requests with token-id prompts of
// an exact length and output forced with max_tokens + ignore_eos, and measures TTFT, every
// inter-token gap and end-to-end latency per request. Modes: closed loop over a concurrency
// sweep, open loop over a Poisson rate sweep, and trace replay over a time-scale sweep.
// Writes a Markdown table (stdout and --output-md), JSON (--output-json) and PNG plots
// (--plot-dir, through gnuplot).
#include <cmath>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/bench/bench_report.h"
#include "tools/bench/load_runner.h"
#include "tools/bench/prompts.h"
#include "tools/bench/trace_shaping.h"
#include "tools/strata/commands.h"
#include "tools/bench/trace.h"

namespace strata::cli {
namespace {

struct BenchOptions {
  std::string url = "http://127.0.0.1:8000";
  std::string model;
  std::string mode = "closed";
  std::vector<int> concurrency = {1, 4, 16};
  std::vector<double> request_rate = {1, 2, 4};
  int max_concurrency = 256;
  int num_requests = 16;
  int input_tokens = 32;
  int output_tokens = 16;
  bench::TraceReplay replay;  // its shaping.num_requests comes from num_requests
  bool server_metrics = true;
  std::string prompt_source = "random";
  std::string corpus;
  int random_token_min = 3;
  int random_token_max = 258;
  int warmup_requests = 1;
  double slo_ttft_ms = 0;
  double slo_itl_ms = 0;
  double cost_per_hour = 0;
  bool no_token_ids = false;
  double timeout_s = 600;
  uint64_t seed = 0;
  std::string output_json;
  std::string output_md;
  std::string plot_dir;
};

StatusOr<bench::PromptSource> make_prompt_source(const BenchOptions& o, const bench::Endpoint& endpoint) {
  if (o.prompt_source == "random") {
    if (o.random_token_min < 0 || o.random_token_max < o.random_token_min) {
      return invalid_argument("--random-token-min {} / --random-token-max {}: need 0 <= min <= max",
                              o.random_token_min, o.random_token_max);
    }
    return bench::PromptSource::random_ids(o.random_token_min, o.random_token_max, o.seed);
  }
  if (o.prompt_source != "corpus") {
    return invalid_argument("--prompt-source `{}`: choose random or corpus", o.prompt_source);
  }
  if (o.corpus.empty()) return invalid_argument("--prompt-source corpus needs --corpus FILE (plain text)");
  std::ifstream in(o.corpus);
  if (!in) return not_found("--corpus `{}`: cannot open it", o.corpus);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  STRATA_ASSIGN_OR_RETURN(std::vector<int32_t> ids, bench::tokenize_remote(endpoint, text));
  if (ids.empty()) return invalid_argument("--corpus `{}` tokenized to no tokens", o.corpus);
  return bench::PromptSource::corpus(std::move(ids), o.seed);
}

struct LoadPlan {
  std::string label;
  double load = 0;
  int num_clients = 1;
  std::vector<bench::PlannedRequest> requests;
};

StatusOr<std::vector<LoadPlan>> make_plans(const BenchOptions& o, bench::PromptSource& prompts) {
  std::vector<LoadPlan> plans;
  auto fixed_requests = [&](const std::vector<double>& send_times) {
    std::vector<bench::PlannedRequest> r;
    for (double t : send_times) {
      r.push_back({.send_s = t, .spec = {.prompt_ids = prompts.next(o.input_tokens), .output_tokens = o.output_tokens}});
    }
    return r;
  };
  if (o.mode == "closed") {
    for (int c : o.concurrency) {
      if (c < 1) return out_of_range("--concurrency must be >= 1, got {}", c);
      plans.push_back({.label = fmt::format("concurrency {}", c), .load = static_cast<double>(c), .num_clients = c,
                       .requests = fixed_requests(std::vector<double>(static_cast<size_t>(o.num_requests), 0.0))});
    }
  } else if (o.mode == "open") {
    for (double rate : o.request_rate) {
      if (!(rate > 0)) return out_of_range("--request-rate must be > 0 req/s, got {}", rate);
      plans.push_back({.label = fmt::format("rate {:g} req/s", rate), .load = rate, .num_clients = o.max_concurrency,
                       .requests = fixed_requests(bench::poisson_send_times(o.num_requests, rate,
                                                                            o.seed + plans.size()))});
    }
  } else if (o.mode == "trace") {
    if (o.replay.trace.empty()) return invalid_argument("--mode trace needs --trace FILE (Azure CSV or Mooncake JSONL)");
    if (!(o.replay.shaping.length_scale > 0)) {
      return out_of_range("--trace-length-scale must be > 0. Given: {}", o.replay.shaping.length_scale);
    }
    STRATA_ASSIGN_OR_RETURN(std::vector<TraceRequest> rows, load_trace(o.replay.trace));
    bench::TraceShaping shaping = o.replay.shaping;
    shaping.num_requests = o.num_requests;
    const std::vector<bench::ShapedRequest> shaped = bench::shape_trace(rows, shaping);
    for (double scale : o.replay.time_scale) {
      if (!(scale > 0)) return out_of_range("--trace-time-scale must be > 0, got {}", scale);
      LoadPlan p{.label = fmt::format("trace x{:g}", scale), .load = scale, .num_clients = o.max_concurrency, .requests = {}};
      for (const bench::ShapedRequest& t : shaped) {
        // Mooncake's blocks keep their identity: shared prefixes are shared token for token.
        std::vector<int32_t> ids = t.block_ids.empty()
                                       ? prompts.next(t.input_tokens)
                                       : bench::block_prompt(t, o.random_token_min, o.random_token_max, o.seed);
        p.requests.push_back({.send_s = t.arrival_s / scale,
                              .spec = {.prompt_ids = std::move(ids), .output_tokens = t.output_tokens,
                                       .max_tokens_cap = t.max_tokens}});
      }
      plans.push_back(std::move(p));
    }
  } else {
    return invalid_argument("--mode `{}`: choose closed, open or trace", o.mode);
  }
  return plans;
}

// Each plan's load point in turn, with a progress bar and (when asked) the server's metrics.
void run_plans(const BenchOptions& o, const bench::Endpoint& endpoint, const bench::ClientOptions& client,
               std::vector<LoadPlan>& plans, std::vector<bench::LoadPointResult>& points,
               std::vector<bench::LoadPointSummary>& summaries) {
  const bench::Slo slo{.ttft_ms = o.slo_ttft_ms, .itl_ms = o.slo_itl_ms};
  for (LoadPlan& plan : plans) {
    bench::ProgressBar bar(plan.label);
    std::optional<bench::ServerMetricsSampler> sampler;
    if (o.server_metrics) sampler.emplace(endpoint);
    bench::LoadPointResult r = bench::run_load_point(
        endpoint, client, std::move(plan.requests), plan.num_clients,
        [&bar](int done, int failed, int total) { bar.update(done, failed, total); });
    bar.finish();
    r.label = plan.label;
    r.load = plan.load;
    summaries.push_back(bench::summarize(r, slo, o.cost_per_hour));
    if (sampler) summaries.back().server = sampler->finish();
    points.push_back(std::move(r));
  }
}

// The usage-mismatch warning, then the Markdown, JSON and plot files the options ask for.
void write_reports(const BenchOptions& o, const std::string& model, const std::string& md,
                   const std::string& load_name, const std::vector<bench::LoadPointResult>& points,
                   const std::vector<bench::LoadPointSummary>& summaries) {
  int mismatches = 0;
  for (const auto& s : summaries) mismatches += s.usage_mismatches;
  if (mismatches > 0) {
    std::cerr << "strata bench: warning: " << mismatches
              << " requests' server usage differs from the tokens bench counted (see the JSON)\n";
  }
  if (!o.output_md.empty()) std::ofstream(o.output_md) << md;
  if (!o.output_json.empty()) {
    nlohmann::json settings = {{"url", o.url},
                               {"model", model},
                               {"mode", o.mode},
                               {"num_requests", o.num_requests},
                               {"input_tokens", o.input_tokens},
                               {"output_tokens", o.output_tokens},
                               {"prompt_source", o.prompt_source},
                               {"trace", o.replay.trace},
                               {"trace_length_scale", o.replay.shaping.length_scale},
                               {"max_tokens_cap", o.replay.shaping.max_tokens_cap},
                               {"slo_ttft_ms", o.slo_ttft_ms},
                               {"slo_itl_ms", o.slo_itl_ms},
                               {"cost_per_hour", o.cost_per_hour},
                               {"seed", o.seed}};
    std::ofstream(o.output_json) << bench::report_json(settings, points, summaries).dump(1) << "\n";
  }
  if (!o.plot_dir.empty()) {
    auto plots = bench::write_plots(o.plot_dir, load_name, points, summaries);
    if (!plots.ok()) {
      std::cerr << "strata bench: warning: " << plots.status().message() << "\n";
    } else {
      for (const std::string& f : *plots) std::cerr << "strata bench: wrote " << f << "\n";
    }
  }
}

int run_bench(const BenchOptions& o) {
  if (Status st = config::check_ranges(o.replay); !st.ok()) return report_failure("bench", st);
  auto endpoint = bench::parse_endpoint(o.url);
  if (!endpoint.ok()) return report_failure("bench", endpoint.status());
  if (o.num_requests < 0) return report_failure("bench", out_of_range("--num-requests must be >= 0, got {}", o.num_requests));
  if (o.input_tokens < 1 || o.output_tokens < 1) {
    return report_failure("bench", out_of_range("--input-tokens and --output-tokens must be >= 1, got {} and {}", o.input_tokens,
                             o.output_tokens));
  }
  bench::ClientOptions client{.model = o.model, .return_token_ids = !o.no_token_ids, .timeout_s = o.timeout_s};
  if (client.model.empty()) {
    auto model = bench::fetch_first_model(*endpoint);
    if (!model.ok()) return report_failure("bench", model.status());
    client.model = *model;
  }
  auto prompts = make_prompt_source(o, *endpoint);
  if (!prompts.ok()) return report_failure("bench", prompts.status());
  auto plans = make_plans(o, *prompts);
  if (!plans.ok()) return report_failure("bench", plans.status());

  std::cerr << "strata bench: " << o.url << ", model " << client.model << ", mode " << o.mode << "\n";
  if (o.warmup_requests > 0) {
    bench::StreamClient warm(*endpoint, client);
    for (int i = 0; i < o.warmup_requests; ++i) {
      const bench::RequestResult r = warm.run({.prompt_ids = prompts->next(o.input_tokens), .output_tokens = 4});
      if (!r.ok) return report_failure("bench", Status(StatusCode::kUnavailable, "the warm-up request failed: " + r.failure));
    }
  }

  std::vector<bench::LoadPointResult> points;
  std::vector<bench::LoadPointSummary> summaries;
  run_plans(o, *endpoint, client, *plans, points, summaries);
  const std::string load_name = o.mode == "closed" ? "concurrency" : o.mode == "open" ? "rate (req/s)" : "time scale";
  const std::string md = bench::report_markdown(load_name, summaries);
  std::cout << md;
  write_reports(o, client.model, md, load_name, points, summaries);
  return 0;
}

}  // namespace

CommandRunner add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "Load-test an OpenAI-compatible server: TTFT, ITL, E2E, throughput");
  cmd->add_option("--url", o->url, "server base URL (http only)")->capture_default_str();
  cmd->add_option("--model", o->model, "`model` field of requests; empty: the first of GET /v1/models")
      ->capture_default_str();
  cmd->add_option("--mode", o->mode, "closed (concurrency sweep), open (Poisson rate sweep) or trace (replay)")
      ->capture_default_str();
  cmd->add_option("--concurrency", o->concurrency, "closed loop: concurrency levels to sweep, e.g. 1,4,16,64,256")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--request-rate", o->request_rate, "open loop: Poisson arrival rates (req/s) to sweep")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--max-concurrency", o->max_concurrency, "open loop and trace: most requests in flight")
      ->capture_default_str();
  cmd->add_option("--num-requests", o->num_requests, "requests per load point (trace: first N rows, 0 = all)")
      ->capture_default_str();
  cmd->add_option("--input-tokens", o->input_tokens, "prompt length in tokens (closed and open loop)")
      ->capture_default_str();
  cmd->add_option("--output-tokens", o->output_tokens, "output length, forced with max_tokens + ignore_eos")
      ->capture_default_str();
  config::CliBinder replay_flags(*cmd);
  o->replay.visit_fields(replay_flags);
  cmd->add_flag("!--no-server-metrics", o->server_metrics,
                "do not scrape the server's /metrics for KV utilization and preemptions");
  cmd->add_option("--prompt-source", o->prompt_source, "random (token ids) or corpus (--corpus via /tokenize)")
      ->capture_default_str();
  cmd->add_option("--corpus", o->corpus, "plain-text file to cut prompts from (tokenized by the server)")
      ->capture_default_str();
  cmd->add_option("--random-token-min", o->random_token_min, "random prompts: smallest token id")
      ->capture_default_str();
  cmd->add_option("--random-token-max", o->random_token_max, "random prompts: largest token id")
      ->capture_default_str();
  cmd->add_option("--warmup-requests", o->warmup_requests, "requests sent (and not measured) before the first point")
      ->capture_default_str();
  cmd->add_option("--slo-ttft-ms", o->slo_ttft_ms, "goodput: TTFT limit in ms (0 = none)")->capture_default_str();
  cmd->add_option("--slo-itl-ms", o->slo_itl_ms, "goodput: limit on a request's mean inter-token gap in ms (0 = none)")
      ->capture_default_str();
  cmd->add_option("--cost-per-hour", o->cost_per_hour,
                  "USD an hour of the server costs: the report adds llmperf's cost per typical request, "
                  "cost per hour x a load point's wall time / its completed requests (0 = leave it out)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--no-token-ids", o->no_token_ids,
                "do not ask for return_token_ids (for servers that reject it); tokens are then counted per chunk");
  cmd->add_option("--timeout-s", o->timeout_s, "per-request read timeout in seconds")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of prompts and arrival times")->capture_default_str();
  cmd->add_option("--output-json", o->output_json, "write the full report (every request) as JSON here")
      ->capture_default_str();
  cmd->add_option("--output-md", o->output_md, "write the Markdown table here too")->capture_default_str();
  cmd->add_option("--plot-dir", o->plot_dir, "write PNG plots here (needs gnuplot)")->capture_default_str();
  return [o] { return run_bench(*o); };
}

}  // namespace strata::cli
