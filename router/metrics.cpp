#include "router/metrics.h"

#include <prometheus/text_serializer.h>

#include <algorithm>

namespace strata::router {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using Buckets = prometheus::Histogram::BucketBoundaries;

const Buckets kLatencyBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                 1,     2.5,    5,     10,   25,    50,   100};
const Buckets kRatioBuckets = {0.125, 0.25, 0.5, 0.8, 1.25, 2, 4, 8};
const Buckets kTokenBuckets = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};

}  // namespace

RouterMetrics::RouterMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      ttft_(BuildHistogram().Name("strata_time_to_first_token_seconds").Help("TTFT: arrival to first token").Register(*registry_).Add({}, kLatencyBuckets)),
      itl_(BuildHistogram().Name("strata_inter_token_latency_seconds").Help("ITL: gap between tokens of one request").Register(*registry_).Add({}, kLatencyBuckets)),
      e2e_(BuildHistogram().Name("strata_e2e_request_latency_seconds").Help("arrival to last token").Register(*registry_).Add({}, kLatencyBuckets)),
      queue_(BuildHistogram().Name("strata_request_queue_time_seconds").Help("arrival to dispatch to a worker group").Register(*registry_).Add({}, kLatencyBuckets)),
      requests_(BuildCounter().Name("strata_requests_total").Help("finished requests (choices) by finish reason").Register(*registry_)),
      prompt_tokens_(BuildCounter().Name("strata_prompt_tokens_total").Help("prompt tokens of dispatched requests").Register(*registry_).Add({})),
      generation_tokens_(BuildCounter().Name("strata_generation_tokens_total").Help("generated tokens").Register(*registry_).Add({})),
      http_(BuildCounter().Name("strata_http_requests_total").Help("HTTP requests by route and status").Register(*registry_)),
      step_seconds_(BuildHistogram().Name("strata_step_seconds").Help("engine step time per worker group").Register(*registry_)),
      tokens_per_step_(BuildHistogram().Name("strata_tokens_per_step").Help("tokens batched per engine step").Register(*registry_)),
      running_(BuildGauge().Name("strata_requests_running").Help("requests running in the worker group").Register(*registry_)),
      waiting_(BuildGauge().Name("strata_requests_waiting").Help("requests waiting in the worker group").Register(*registry_)),
      kv_used_(BuildGauge().Name("strata_kv_blocks_used").Help("KV-cache blocks in use").Register(*registry_)),
      kv_total_(BuildGauge().Name("strata_kv_blocks_total").Help("KV-cache blocks in the group").Register(*registry_)),
      preemptions_(BuildGauge().Name("strata_preemptions_total").Help("preemptions since the worker started").Register(*registry_)),
      kv_cached_(BuildGauge().Name("strata_kv_blocks_cached").Help("KV-cache blocks no request holds, kept for their prefix (reclaimable)").Register(*registry_)),
      prefix_queries_(BuildGauge().Name("strata_prefix_cache_queries_total").Help("prompt tokens looked up in the prefix cache since the worker started").Register(*registry_)),
      prefix_hits_(BuildGauge().Name("strata_prefix_cache_hits_total").Help("prompt tokens found in the prefix cache since the worker started").Register(*registry_)),
      prefix_hit_rate_(BuildGauge().Name("strata_prefix_cache_hit_rate").Help("prefix cache hits over queries since the worker started").Register(*registry_)),
      prefix_evictions_(BuildGauge().Name("strata_prefix_cache_evictions_total").Help("cached KV blocks evicted to make room since the worker started").Register(*registry_)),
      spec_verifications_(BuildGauge().Name("strata_spec_decode_verifications_total").Help("speculative verification steps (a sequence's decode token with its drafts) since the worker started").Register(*registry_)),
      spec_drafts_(BuildGauge().Name("strata_spec_decode_draft_tokens_total").Help("draft tokens proposed since the worker started").Register(*registry_)),
      spec_accepted_(BuildGauge().Name("strata_spec_decode_accepted_tokens_total").Help("draft tokens the target accepted since the worker started").Register(*registry_)),
      spec_acceptance_(BuildGauge().Name("strata_spec_decode_acceptance_rate").Help("accepted over proposed draft tokens since the worker started").Register(*registry_)),
      spec_mean_length_(BuildGauge().Name("strata_spec_decode_mean_accepted_length").Help("tokens a verification step yields on average (accepted drafts + 1)").Register(*registry_)),
      router_queue_(BuildGauge().Name("strata_router_queue_length").Help("requests (one per choice) the router accepted and has not finished answering; what --max-queue-requests bounds").Register(*registry_).Add({})),
      length_prediction_ratio_(BuildHistogram().Name("strata_output_length_actual_over_predicted").Help("finished requests' output length over the median the router predicted for them").Register(*registry_).Add({}, kRatioBuckets)),
      admission_quantile_(BuildGauge().Name("strata_admission_quantile").Help("quantile of predicted output length the `predicted` admission policy uses now").Register(*registry_).Add({})) {}

void RouterMetrics::observe_length_prediction(int64_t predicted_median, int64_t actual) {
  length_prediction_ratio_.Observe(static_cast<double>(std::max<int64_t>(actual, 1)) /
                                   static_cast<double>(std::max<int64_t>(predicted_median, 1)));
}

void RouterMetrics::count_request(const std::string& finish_reason) {
  requests_.Add({{"finish_reason", finish_reason}}).Increment();
}

void RouterMetrics::count_tokens(int64_t prompt, int64_t generated) {
  prompt_tokens_.Increment(static_cast<double>(prompt));
  generation_tokens_.Increment(static_cast<double>(generated));
}

void RouterMetrics::count_http(const std::string& route, int status) {
  http_.Add({{"route", route}, {"status", std::to_string(status)}}).Increment();
}

void RouterMetrics::observe_step(const std::string& group, double seconds, int64_t tokens) {
  step_seconds_.Add({{"group", group}}, kLatencyBuckets).Observe(seconds);
  tokens_per_step_.Add({{"group", group}}, kTokenBuckets).Observe(static_cast<double>(tokens));
}

void RouterMetrics::set_group(const std::string& group_id, const wire::KvStats& kv) {
  const std::map<std::string, std::string> labels = {{"group", group_id}};
  const auto set = [&](prometheus::Family<prometheus::Gauge>& family, int64_t value) {
    family.Add(labels).Set(static_cast<double>(value));
  };
  set(running_, kv.num_running);
  set(waiting_, kv.num_waiting);
  set(kv_used_, kv.total_blocks - kv.free_blocks);
  set(kv_total_, kv.total_blocks);
  set(kv_cached_, kv.cached_blocks);
  set(preemptions_, kv.num_preemptions);
  set(prefix_queries_, kv.prefix_cache_queries);
  set(prefix_hits_, kv.prefix_cache_hits);
  set(prefix_evictions_, kv.prefix_cache_evictions);
  prefix_hit_rate_.Add(labels).Set(kv.prefix_cache_queries > 0 ? static_cast<double>(kv.prefix_cache_hits) /
                                                                     static_cast<double>(kv.prefix_cache_queries)
                                                               : 0.0);
  set(spec_verifications_, kv.spec_verifications);
  set(spec_drafts_, kv.spec_draft_tokens);
  set(spec_accepted_, kv.spec_accepted_tokens);
  const auto ratio = [](int64_t num, int64_t den) {
    return den > 0 ? static_cast<double>(num) / static_cast<double>(den) : 0.0;
  };
  spec_acceptance_.Add(labels).Set(ratio(kv.spec_accepted_tokens, kv.spec_draft_tokens));
  spec_mean_length_.Add(labels).Set(
      kv.spec_verifications > 0 ? 1.0 + ratio(kv.spec_accepted_tokens, kv.spec_verifications) : 0.0);
}

std::string RouterMetrics::serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace strata::router
