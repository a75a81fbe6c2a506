#include "tools/bench/server_metrics.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <utility>

#include <httplib.h>

namespace strata::bench {
namespace {

// One sample line: `name{labels} value [timestamp]` or `name value`. Comments return false.
bool parse_sample_line(std::string_view line, std::string_view& name, double& value) {
  if (line.empty() || line.front() == '#') return false;
  const size_t name_end = line.find_first_of("{ ");
  if (name_end == std::string_view::npos) return false;
  name = line.substr(0, name_end);
  size_t value_begin = name_end;
  if (line[name_end] == '{') {
    const size_t close = line.find('}', name_end);
    if (close == std::string_view::npos) return false;
    value_begin = close + 1;
  }
  const std::string rest(line.substr(value_begin));
  char* end = nullptr;
  value = std::strtod(rest.c_str(), &end);
  return end != rest.c_str();
}

}  // namespace

ServerMetricsSample parse_server_metrics(std::string_view text) {
  double used = 0, total = 0, strata_preempt = 0, vllm_usage = 0, vllm_preempt = 0;
  bool has_used = false, has_total = false, has_strata_preempt = false;
  int vllm_usage_series = 0;
  bool has_vllm_preempt = false;
  // Speculative counters: strata's names and vLLM's, summed over series.
  const std::pair<std::string_view, std::string_view> spec_names[] = {
      {"strata_spec_decode_verifications_total", "vllm:spec_decode_num_drafts_total"},
      {"strata_spec_decode_draft_tokens_total", "vllm:spec_decode_num_draft_tokens_total"},
      {"strata_spec_decode_accepted_tokens_total", "vllm:spec_decode_num_accepted_tokens_total"}};
  std::optional<double> spec[3];
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string_view name;
    double v = 0;
    if (!parse_sample_line(line, name, v)) continue;
    if (name == "strata_kv_blocks_used") {
      used += v, has_used = true;
    } else if (name == "strata_kv_blocks_total") {
      total += v, has_total = true;
    } else if (name == "strata_preemptions_total") {
      strata_preempt += v, has_strata_preempt = true;
    } else if (name == "vllm:gpu_cache_usage_perc" || name == "vllm:kv_cache_usage_perc") {
      vllm_usage += v, ++vllm_usage_series;
    } else if (name == "vllm:num_preemptions_total") {
      vllm_preempt += v, has_vllm_preempt = true;
    }
    for (size_t i = 0; i < 3; ++i) {
      if (name == spec_names[i].first || name == spec_names[i].second) spec[i] = spec[i].value_or(0) + v;
    }
  }
  ServerMetricsSample s;
  if (has_used && has_total && total > 0) {
    s.kv_utilization = used / total;
  } else if (vllm_usage_series > 0) {
    s.kv_utilization = vllm_usage / vllm_usage_series;  // a fraction per engine
  }
  if (has_strata_preempt) {
    s.preemptions = strata_preempt;
  } else if (has_vllm_preempt) {
    s.preemptions = vllm_preempt;
  }
  s.spec_verifications = spec[0];
  s.spec_draft_tokens = spec[1];
  s.spec_accepted_tokens = spec[2];
  return s;
}

ServerMetricsSampler::ServerMetricsSampler(const Endpoint& endpoint, double period_s)
    : endpoint_(endpoint), period_s_(period_s) {
  thread_ = std::thread([this] { run(); });
}

ServerMetricsSampler::~ServerMetricsSampler() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::optional<ServerMetricsSample> ServerMetricsSampler::scrape() {
  httplib::Client client(endpoint_.host, endpoint_.port);
  client.set_connection_timeout(std::chrono::seconds(2));
  client.set_read_timeout(std::chrono::seconds(5));
  auto res = client.Get(endpoint_.prefix + "/metrics");
  if (!res || res->status != 200) return std::nullopt;
  return parse_server_metrics(res->body);
}

void ServerMetricsSampler::run() {
  const auto period = std::chrono::duration<double>(period_s_);
  for (bool last = false; !last;) {
    last = stop_.load();
    const auto next = std::chrono::steady_clock::now() + period;
    if (auto s = scrape()) {
      if (s->kv_utilization) {
        kv_sum_ += *s->kv_utilization;
        kv_max_ = std::max(kv_max_, *s->kv_utilization);
        ++kv_samples_;
      }
      preemptions_.see(s->preemptions);
      spec_verifications_.see(s->spec_verifications);
      spec_drafts_.see(s->spec_draft_tokens);
      spec_accepted_.see(s->spec_accepted_tokens);
    }
    while (!last && !stop_ && std::chrono::steady_clock::now() < next) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

std::optional<ServerStats> ServerMetricsSampler::finish() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (kv_samples_ == 0 && !preemptions_.first) return std::nullopt;
  ServerStats out;
  out.num_samples = kv_samples_;
  if (kv_samples_ > 0) {
    out.kv_utilization_mean = kv_sum_ / kv_samples_;
    out.kv_utilization_max = kv_max_;
  }
  out.preemptions = preemptions_.growth();
  out.spec_verifications = spec_verifications_.growth();
  out.spec_draft_tokens = spec_drafts_.growth();
  out.spec_accepted_tokens = spec_accepted_.growth();
  return out;
}

}  // namespace strata::bench
