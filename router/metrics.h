// RouterMetrics: everything /metrics reports, as Prometheus families (prometheus-cpp),
// named after the quantities in docs/architecture.md: TTFT, ITL, end-to-end latency and queue time
// histograms; requests and tokens by finish reason; running and waiting requests, KV
// blocks, preemptions, prefix-cache queries, hits and evictions, speculative drafts
// proposed and accepted, step time and tokens per step per worker group.
#pragma once

#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "common/wire.h"

namespace strata::router {

class RouterMetrics {
 public:
  RouterMetrics();

  void observe_ttft(double seconds) { ttft_.Observe(seconds); }
  void observe_itl(double seconds) { itl_.Observe(seconds); }
  void observe_e2e(double seconds) { e2e_.Observe(seconds); }
  void observe_queue(double seconds) { queue_.Observe(seconds); }
  void count_request(const std::string& finish_reason);
  void count_tokens(int64_t prompt, int64_t generated);
  void count_http(const std::string& route, int status);
  void observe_step(const std::string& group, double seconds, int64_t tokens);
  // A worker group's last KV report (cumulative figures as the worker counts them).
  void set_group(const std::string& group_id, const wire::KvStats& kv);
  void set_queue_length(int64_t n) { router_queue_.Set(static_cast<double>(n)); }
  // Router scheduling: how a finished request's length compared with the median predicted
  // when it arrived (actual / predicted, both at least 1), and the admission quantile now.
  void observe_length_prediction(int64_t predicted_median, int64_t actual);
  void set_admission_quantile(double q) { admission_quantile_.Set(q); }

  std::string serialize() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Histogram& ttft_;
  prometheus::Histogram& itl_;
  prometheus::Histogram& e2e_;
  prometheus::Histogram& queue_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Counter& prompt_tokens_;
  prometheus::Counter& generation_tokens_;
  prometheus::Family<prometheus::Counter>& http_;
  prometheus::Family<prometheus::Histogram>& step_seconds_;
  prometheus::Family<prometheus::Histogram>& tokens_per_step_;
  prometheus::Family<prometheus::Gauge>& running_;
  prometheus::Family<prometheus::Gauge>& waiting_;
  prometheus::Family<prometheus::Gauge>& kv_used_;
  prometheus::Family<prometheus::Gauge>& kv_total_;
  prometheus::Family<prometheus::Gauge>& preemptions_;
  prometheus::Family<prometheus::Gauge>& kv_cached_;
  prometheus::Family<prometheus::Gauge>& prefix_queries_;
  prometheus::Family<prometheus::Gauge>& prefix_hits_;
  prometheus::Family<prometheus::Gauge>& prefix_hit_rate_;
  prometheus::Family<prometheus::Gauge>& prefix_evictions_;
  prometheus::Family<prometheus::Gauge>& spec_verifications_;
  prometheus::Family<prometheus::Gauge>& spec_drafts_;
  prometheus::Family<prometheus::Gauge>& spec_accepted_;
  prometheus::Family<prometheus::Gauge>& spec_acceptance_;
  prometheus::Family<prometheus::Gauge>& spec_mean_length_;
  prometheus::Gauge& router_queue_;
  prometheus::Histogram& length_prediction_ratio_;
  prometheus::Gauge& admission_quantile_;
};

}  // namespace strata::router
