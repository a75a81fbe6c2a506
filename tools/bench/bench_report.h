// What a load point measured, summarized: throughput, latency percentiles, goodput and
// failures; written as JSON for machines, a Markdown table for people, and PNG plots.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "tools/bench/load_runner.h"
#include "tools/bench/server_metrics.h"

namespace strata::bench {

struct Percentiles {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0;
  size_t count = 0;
};

// Linear interpolation between closest ranks; zeros when `values` is empty.
Percentiles percentiles(std::vector<double> values);

// Service-level objectives for goodput; <= 0 means "no limit".
struct Slo {
  double ttft_ms = 0;
  double itl_ms = 0;  // checked against each request's mean inter-token gap (its TPOT)
};

struct LoadPointSummary {
  std::string label;
  double load = 0;
  int num_requests = 0;
  int num_ok = 0;
  std::map<std::string, int> failures;  // by reason ("http 503", "connection: ...")
  double duration_s = 0;
  double requests_per_s = 0;
  double output_tokens_per_s = 0;
  double goodput_requests_per_s = 0;  // ok requests meeting the SLOs, per second
  int64_t input_tokens = 0, output_tokens = 0;
  int usage_mismatches = 0;  // ok requests whose server usage differs from what bench counted
  int retries = 0;           // tries the server closed unanswered, then sent again (sse_client.h)
  // llmperf's "cost per typical request": cost per hour × the load point's wall time ÷ its
  // completed requests, in USD; only when a cost per hour was given and a request completed.
  std::optional<double> cost_per_request_usd;
  Percentiles ttft_ms, itl_ms, e2e_ms, tpot_ms;
  std::optional<ServerStats> server;  // from the server's /metrics, when it has them
};

// `cost_per_hour_usd` > 0 (what the server's machine costs) sets cost_per_request_usd.
LoadPointSummary summarize(const LoadPointResult& point, const Slo& slo, double cost_per_hour_usd = 0);

// The whole run as JSON: settings, one summary per load point, and every request.
nlohmann::json report_json(const nlohmann::json& settings, const std::vector<LoadPointResult>& points,
                           const std::vector<LoadPointSummary>& summaries);

// A Markdown table, one row per load point (`load_name` heads the first column).
std::string report_markdown(const std::string& load_name, const std::vector<LoadPointSummary>& summaries);

// PNG plots in `dir` through gnuplot: latency CDFs (ttft_cdf.png, itl_cdf.png, e2e_cdf.png)
// and throughput/latency against load (throughput.png, latency_vs_load.png). Returns the
// files written; an error (not fatal to a run) when gnuplot is missing or fails.
StatusOr<std::vector<std::string>> write_plots(const std::string& dir, const std::string& load_name,
                                               const std::vector<LoadPointResult>& points,
                                               const std::vector<LoadPointSummary>& summaries);

}  // namespace strata::bench
