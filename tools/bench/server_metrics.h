// What the server itself saw during a load point, read from its Prometheus /metrics: KV-cache
// utilization over time and preemptions. Client-side timings cannot show either, and the
// scheduling comparison (docs/benchmarks.md) is about both. Understands strata's metric names
// and vLLM's; a server exposing neither gives no figures, not an error.
#pragma once

#include <atomic>
#include <optional>
#include <string_view>
#include <thread>

#include "tools/bench/sse_client.h"

namespace strata::bench {

// One scrape, summed over worker groups. Fields are absent when the server lacks the metric.
struct ServerMetricsSample {
  std::optional<double> kv_utilization;  // used / total blocks, in [0, 1]
  std::optional<double> preemptions;     // the server's running total
};

// Parses Prometheus text exposition: strata_kv_blocks_used / strata_kv_blocks_total /
// strata_preemptions_total (one series per group), or vllm:gpu_cache_usage_perc /
// vllm:num_preemptions_total.
ServerMetricsSample parse_server_metrics(std::string_view text);

struct ServerStats {
  double kv_utilization_mean = 0;  // mean over the samples of the load point
  double kv_utilization_max = 0;
  double preemptions = 0;          // growth of the server's counter during the load point
  int num_samples = 0;
};

// Scrapes GET /metrics every period_s on a thread of its own between construction and finish().
class ServerMetricsSampler {
 public:
  ServerMetricsSampler(const Endpoint& endpoint, double period_s = 0.25);
  ~ServerMetricsSampler();
  ServerMetricsSampler(const ServerMetricsSampler&) = delete;
  ServerMetricsSampler& operator=(const ServerMetricsSampler&) = delete;

  // Stops sampling (after one last scrape); nullopt when the server exposes neither metric.
  std::optional<ServerStats> finish();

 private:
  void run();
  std::optional<ServerMetricsSample> scrape();

  Endpoint endpoint_;
  double period_s_;
  std::atomic<bool> stop_{false};
  std::optional<double> first_preemptions_, last_preemptions_;
  double kv_sum_ = 0, kv_max_ = 0;
  int kv_samples_ = 0;
  std::thread thread_;
};

}  // namespace strata::bench
