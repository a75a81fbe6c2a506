// What the server itself saw during a load point, read from its Prometheus /metrics: KV-cache
// utilization over time, preemptions and speculative decoding's drafts. Client-side timings cannot show either, and the
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
  // Speculative decoding's running totals: verification steps, drafts proposed, accepted.
  std::optional<double> spec_verifications, spec_draft_tokens, spec_accepted_tokens;
};

// Parses Prometheus text exposition: strata_kv_blocks_used / strata_kv_blocks_total /
// strata_preemptions_total / strata_spec_decode_*_total (one series per group), or
// vllm:gpu_cache_usage_perc / vllm:num_preemptions_total / vllm:spec_decode_num_*_total.
ServerMetricsSample parse_server_metrics(std::string_view text);

struct ServerStats {
  double kv_utilization_mean = 0;  // mean over the samples of the load point
  double kv_utilization_max = 0;
  double preemptions = 0;          // growth of the server's counter during the load point
  // Growth of the speculative counters during the load point (0 without speculation).
  double spec_verifications = 0, spec_draft_tokens = 0, spec_accepted_tokens = 0;
  int num_samples = 0;
  double acceptance_rate() const { return spec_draft_tokens > 0 ? spec_accepted_tokens / spec_draft_tokens : 0; }
  // Tokens a verification step yields: the accepted drafts and the target's own token.
  double mean_accepted_length() const {
    return spec_verifications > 0 ? 1 + spec_accepted_tokens / spec_verifications : 0;
  }
};

// A server counter's growth over the samples that had it.
struct CounterGrowth {
  std::optional<double> first, last;
  void see(std::optional<double> value) {
    if (!value) return;
    if (!first) first = value;
    last = value;
  }
  double growth() const { return first ? *last - *first : 0; }
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
  CounterGrowth preemptions_, spec_verifications_, spec_drafts_, spec_accepted_;
  double kv_sum_ = 0, kv_max_ = 0;
  int kv_samples_ = 0;
  std::thread thread_;
};

}  // namespace strata::bench
