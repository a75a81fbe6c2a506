// Percentiles, goodput and failure counting of bench reports, on hand-made results.
#include <gtest/gtest.h>

#include "tools/bench/bench_report.h"

namespace strata::bench {
namespace {

TEST(BenchReport, PercentilesInterpolateBetweenRanks) {
  const Percentiles p = percentiles({4, 1, 3, 2, 5});
  EXPECT_DOUBLE_EQ(p.mean, 3);
  EXPECT_DOUBLE_EQ(p.p50, 3);
  EXPECT_DOUBLE_EQ(p.p90, 4.6);
  EXPECT_NEAR(p.p99, 4.96, 1e-12);
  EXPECT_EQ(percentiles({}).count, 0u);
}

RequestResult ok_request(double ttft_s, double itl_s, int n) {
  RequestResult r;
  r.ok = true;
  r.ttft_s = ttft_s;
  r.e2e_s = ttft_s + itl_s * (n - 1);
  r.input_tokens = 8;
  r.output_tokens = n;
  r.itl_s.assign(static_cast<size_t>(n - 1), itl_s);
  r.usage_prompt_tokens = 8;
  r.usage_completion_tokens = n;
  return r;
}

TEST(BenchReport, GoodputCountsOnlyRequestsMeetingBothSlos) {
  LoadPointResult point{.label = "x", .load = 1, .duration_s = 2.0, .requests = {}};
  point.requests.push_back(ok_request(0.1, 0.01, 5));   // meets both
  point.requests.push_back(ok_request(0.5, 0.01, 5));   // TTFT too slow
  point.requests.push_back(ok_request(0.1, 0.05, 5));   // ITL too slow
  RequestResult failed;
  failed.failure = "http 503";
  point.requests.push_back(failed);
  point.requests.push_back(failed);
  const LoadPointSummary s = summarize(point, Slo{.ttft_ms = 200, .itl_ms = 20});
  EXPECT_EQ(s.num_ok, 3);
  EXPECT_EQ(s.failures.at("http 503"), 2);
  EXPECT_DOUBLE_EQ(s.goodput_requests_per_s, 0.5);
  EXPECT_DOUBLE_EQ(s.requests_per_s, 1.5);
  EXPECT_DOUBLE_EQ(s.output_tokens_per_s, 7.5);
  EXPECT_EQ(s.itl_ms.count, 12u);
  EXPECT_EQ(s.usage_mismatches, 0);
  const std::string md = report_markdown("rate", {s});
  EXPECT_NE(md.find("http 503: 2"), std::string::npos);
}

TEST(BenchReport, UsageMismatchIsCounted) {
  LoadPointResult point{.label = "x", .load = 1, .duration_s = 1.0, .requests = {ok_request(0.1, 0.01, 5)}};
  point.requests[0].usage_completion_tokens = 6;
  EXPECT_EQ(summarize(point, Slo{}).usage_mismatches, 1);
}

TEST(BenchReport, CostPerRequestIsCostPerHourTimesWallTimeOverCompletedRequests) {
  LoadPointResult point{.label = "x", .load = 1, .duration_s = 90.0, .requests = {}};
  for (int i = 0; i < 3; ++i) point.requests.push_back(ok_request(0.1, 0.01, 5));
  RequestResult failed;
  failed.failure = "http 503";
  point.requests.push_back(failed);
  // $4/hour for 90 s is $0.10, over 3 completed requests (the failed one costs too).
  const LoadPointSummary s = summarize(point, Slo{}, 4.0);
  ASSERT_TRUE(s.cost_per_request_usd.has_value());
  EXPECT_DOUBLE_EQ(*s.cost_per_request_usd, 0.1 / 3);
  EXPECT_NE(report_markdown("c", {s}).find("USD / request"), std::string::npos);
  const LoadPointSummary free = summarize(point, Slo{});
  EXPECT_FALSE(free.cost_per_request_usd.has_value());
  EXPECT_EQ(report_markdown("c", {free}).find("USD / request"), std::string::npos);
}

TEST(BenchReport, RetriesAreCountedAndShown) {
  LoadPointResult point{.label = "x", .load = 1, .duration_s = 1.0, .requests = {ok_request(0.1, 0.01, 5)}};
  point.requests.push_back(ok_request(0.1, 0.01, 5));
  point.requests[0].retries = 1;
  point.requests[1].retries = 2;
  const LoadPointSummary s = summarize(point, Slo{});
  EXPECT_EQ(s.retries, 3);
  EXPECT_NE(report_markdown("c", {s}).find("none (3 retries after the server closed the connection)"),
            std::string::npos);
  const nlohmann::json j = report_json({}, {point}, {s});
  EXPECT_EQ(j["load_points"][0]["retries"], 3);
  EXPECT_EQ(j["load_points"][0]["requests"][1]["retries"], 2);
}

}  // namespace
}  // namespace strata::bench

namespace strata::bench {
namespace {

TEST(ServerMetrics, SumsStrataSeriesOverGroups) {
  const std::string text =
      "# HELP strata_kv_blocks_used KV-cache blocks in use\n"
      "# TYPE strata_kv_blocks_used gauge\n"
      "strata_kv_blocks_used{group=\"g0\"} 30\n"
      "strata_kv_blocks_used{group=\"g1\"} 10\r\n"
      "strata_kv_blocks_total{group=\"g0\"} 50\n"
      "strata_kv_blocks_total{group=\"g1\"} 50\n"
      "strata_kv_blocks_used_other 999\n"
      "strata_preemptions_total{group=\"g0\"} 3\n"
      "strata_preemptions_total{group=\"g1\"} 4 1700000000000\n";
  const ServerMetricsSample s = parse_server_metrics(text);
  ASSERT_TRUE(s.kv_utilization.has_value());
  EXPECT_DOUBLE_EQ(*s.kv_utilization, 0.4);
  ASSERT_TRUE(s.preemptions.has_value());
  EXPECT_DOUBLE_EQ(*s.preemptions, 7);
}

TEST(ServerMetrics, ReadsVllmNamesAndToleratesServersWithout) {
  const ServerMetricsSample v = parse_server_metrics(
      "vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.25\nvllm:num_preemptions_total{model_name=\"m\"} 12.0\n");
  ASSERT_TRUE(v.kv_utilization && v.preemptions);
  EXPECT_DOUBLE_EQ(*v.kv_utilization, 0.25);
  EXPECT_DOUBLE_EQ(*v.preemptions, 12);
  const ServerMetricsSample none = parse_server_metrics("# nothing\nhttp_requests_total 5\ngarbage{\n");
  EXPECT_FALSE(none.kv_utilization.has_value());
  EXPECT_FALSE(none.preemptions.has_value());
}

TEST(ServerMetrics, MarkdownShowsServerColumnsOnlyWhenMeasured) {
  LoadPointSummary a{.label = "a", .load = 1};
  EXPECT_EQ(report_markdown("rate", {a}).find("preemptions"), std::string::npos);
  a.server = ServerStats{.kv_utilization_mean = 0.5, .kv_utilization_max = 0.9, .preemptions = 4, .num_samples = 3};
  const std::string md = report_markdown("rate", {a});
  EXPECT_NE(md.find("| 4 | 50% / 90% |"), std::string::npos) << md;
}

TEST(ServerMetrics, ReadsSpeculativeCountersOfBothServersAndReportsTheirRates) {
  const ServerMetricsSample s = parse_server_metrics(
      "strata_spec_decode_verifications_total{group=\"g0\"} 10\n"
      "strata_spec_decode_verifications_total{group=\"g1\"} 10\n"
      "strata_spec_decode_draft_tokens_total{group=\"g0\"} 80\n"
      "strata_spec_decode_accepted_tokens_total{group=\"g0\"} 30\n"
      "strata_spec_decode_accepted_tokens_total{group=\"g1\"} 10\n");
  EXPECT_EQ(s.spec_verifications, 20);
  EXPECT_EQ(s.spec_draft_tokens, 80);
  EXPECT_EQ(s.spec_accepted_tokens, 40);
  const ServerMetricsSample v = parse_server_metrics(
      "vllm:spec_decode_num_drafts_total{engine=\"0\"} 5\nvllm:spec_decode_num_draft_tokens_total{engine=\"0\"} 20\n"
      "vllm:spec_decode_num_accepted_tokens_total{engine=\"0\"} 15\n");
  EXPECT_EQ(v.spec_draft_tokens, 20);
  EXPECT_EQ(v.spec_accepted_tokens, 15);
  EXPECT_FALSE(parse_server_metrics("strata_kv_blocks_used 1\n").spec_draft_tokens.has_value());

  LoadPointSummary a{.label = "a", .load = 1};
  a.server = ServerStats{.preemptions = 0, .spec_verifications = 20, .spec_draft_tokens = 80,
                         .spec_accepted_tokens = 40, .num_samples = 2};
  const std::string md = report_markdown("rate", {a});
  EXPECT_NE(md.find("| 80 | 0.50 | 3.00 |"), std::string::npos) << md;  // 40/80; 1 + 40/20
  a.server->spec_draft_tokens = 0;
  EXPECT_EQ(report_markdown("rate", {a}).find("acceptance"), std::string::npos);
}

}  // namespace
}  // namespace strata::bench
