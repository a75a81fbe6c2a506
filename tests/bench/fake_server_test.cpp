// bench against a fake OpenAI endpoint in this process that streams at planted delays:
// what bench reports must match what was planted (TTFT and ITL within 5%).
#include <chrono>
#include <cmath>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "tools/bench/bench_report.h"
#include "tools/bench/load_runner.h"

namespace strata::bench {
namespace {

constexpr auto kTtft = std::chrono::milliseconds(200);
constexpr auto kItl = std::chrono::milliseconds(40);

std::string event(const nlohmann::json& j) { return "data: " + j.dump() + "\n\n"; }

// Streams `max_tokens` tokens: the first after kTtft, the rest kItl apart; then usage and
// [DONE]. A prompt starting with id 503 gets HTTP 503; with id 7, tokens come in pairs
// (token_ids of length 2) every 2 × kItl.
class FakeServer {
 public:
  FakeServer() {
    server_.Post("/v1/completions", [](const httplib::Request& req, httplib::Response& res) {
      const nlohmann::json body = nlohmann::json::parse(req.body);
      const auto prompt = body["prompt"].get<std::vector<int>>();
      const int n = body["max_tokens"].get<int>();
      if (prompt.at(0) == 503) {
        res.status = 503;
        res.set_content(R"({"error": {"message": "busy"}})", "application/json");
        return;
      }
      const int per_chunk = prompt.at(0) == 7 ? 2 : 1;
      const auto start = std::chrono::steady_clock::now();
      res.set_chunked_content_provider(
          "text/event-stream", [=, sent = 0](size_t, httplib::DataSink& sink) mutable {
            if (sent < n) {
              const int k = std::min(per_chunk, n - sent);
              // Due times counted from the start, so a late wake-up does not shift the rest.
              std::this_thread::sleep_until(start + kTtft + kItl * (sent + k - 1));
              const std::string e = event({{"choices", {{{"index", 0}, {"text", std::string(k, 'x')},
                                                        {"token_ids", std::vector<int>(k, 42)}}}}});
              sent += k;
              return sink.write(e.data(), e.size());
            }
            const std::string tail =
                event({{"choices", nlohmann::json::array()},
                       {"usage", {{"prompt_tokens", prompt.size()}, {"completion_tokens", n}}}}) +
                "data: [DONE]\n\n";
            sink.write(tail.data(), tail.size());
            sink.done();
            return true;
          });
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeServer() {
    server_.stop();
    thread_.join();
  }
  Endpoint endpoint() const { return Endpoint{.host = "127.0.0.1", .port = port_, .prefix = ""}; }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

constexpr double kTtftMs = 200, kItlMs = 40;

// "" when |v − want| ≤ tol, else a line saying what was off.
std::string off(const char* what, double v, double want, double tol) {
  if (std::abs(v - want) <= tol) return "";
  return std::string(what) + " = " + std::to_string(v) + ", planted " + std::to_string(want) + "; ";
}

// What one load point of four 8-token requests over two clients must report.
std::string planted_figures_problems(const LoadPointResult& point) {
  std::string problems;
  for (const RequestResult& r : point.requests) {
    if (!r.ok || r.output_tokens != 8 || r.itl_s.size() != 7u) return "a request failed: " + r.failure;
    problems += off("ttft_ms", r.ttft_s * 1e3, kTtftMs, 0.05 * kTtftMs);
    // One gap may jitter by a scheduler tick; the reported figures below (mean and median
    // over all gaps) must be within 5%.
    for (double g : r.itl_s) problems += off("itl_ms", g * 1e3, kItlMs, 0.25 * kItlMs);
    if (r.ttft_s > r.e2e_s) problems += "ttft > e2e; ";
  }
  const LoadPointSummary s = summarize(point, Slo{});
  problems += off("mean ttft", s.ttft_ms.mean, kTtftMs, 0.05 * kTtftMs);
  problems += off("p99 ttft", s.ttft_ms.p99, kTtftMs, 0.05 * kTtftMs);
  problems += off("mean itl", s.itl_ms.mean, kItlMs, 0.05 * kItlMs);
  problems += off("p50 itl", s.itl_ms.p50, kItlMs, 0.05 * kItlMs);
  problems += off("mean e2e", s.e2e_ms.mean, kTtftMs + 7 * kItlMs, 0.05 * (kTtftMs + 7 * kItlMs));
  if (s.usage_mismatches != 0) problems += "usage mismatches; ";
  // Two clients, four requests of ~480 ms: two rounds.
  problems += off("duration_s", point.duration_s, 2 * (kTtftMs + 7 * kItlMs) / 1e3, 0.1);
  return problems;
}

// Timing on a shared 2-core machine: a whole-process stall (seen once in CI: +625 ms on two
// requests at once) shifts every figure, so the load point gets three tries; a report that
// computes a figure wrongly fails all three.
TEST(BenchFakeServer, ReportsPlantedTtftAndItlWithin5Percent) {
  FakeServer server;
  std::vector<PlannedRequest> plan;
  for (int i = 0; i < 4; ++i) plan.push_back({.send_s = 0, .spec = {.prompt_ids = {1, 2, 3}, .output_tokens = 8}});
  std::string problems;
  for (int attempt = 0; attempt < 3; ++attempt) {
    problems = planted_figures_problems(run_load_point(server.endpoint(), ClientOptions{}, plan, 2, {}));
    if (problems.empty()) break;
  }
  EXPECT_EQ(problems, "");
}

TEST(BenchFakeServer, ChunkOfTwoTokensSplitsItsGapEvenly) {
  FakeServer server;
  StreamClient client(server.endpoint(), ClientOptions{});
  const RequestResult r = client.run({.prompt_ids = {7}, .output_tokens = 6});
  ASSERT_TRUE(r.ok) << r.failure;
  EXPECT_EQ(r.output_tokens, 6);
  ASSERT_EQ(r.itl_s.size(), 5u);
  // First chunk (2 tokens) at TTFT + ITL: its second token arrives with the first.
  EXPECT_NEAR(r.ttft_s * 1e3, kTtftMs + kItlMs, 0.05 * (kTtftMs + kItlMs));
  EXPECT_EQ(r.itl_s[0], 0.0);
  for (size_t i = 1; i < r.itl_s.size(); ++i) EXPECT_NEAR(r.itl_s[i] * 1e3, kItlMs, 0.25 * kItlMs);
  EXPECT_NEAR((r.e2e_s - r.ttft_s) / 4 * 1e3, kItlMs, 0.05 * kItlMs);
}

TEST(BenchFakeServer, FailuresAreCountedByStatus) {
  FakeServer server;
  std::vector<PlannedRequest> plan = {{.send_s = 0, .spec = {.prompt_ids = {503}, .output_tokens = 2}},
                                      {.send_s = 0, .spec = {.prompt_ids = {503}, .output_tokens = 2}},
                                      {.send_s = 0, .spec = {.prompt_ids = {1}, .output_tokens = 2}}};
  const LoadPointSummary s = summarize(run_load_point(server.endpoint(), ClientOptions{}, plan, 3, {}), Slo{});
  EXPECT_EQ(s.num_ok, 1);
  EXPECT_EQ(s.failures.at("http 503"), 2);
}

TEST(BenchFakeServer, OpenLoopSendsAtPlannedTimes) {
  FakeServer server;
  const std::vector<double> times = poisson_send_times(6, 20.0, 1);
  EXPECT_EQ(times[0], 0.0);
  std::vector<PlannedRequest> plan;
  for (double t : times) plan.push_back({.send_s = t, .spec = {.prompt_ids = {1}, .output_tokens = 1}});
  const LoadPointResult point = run_load_point(server.endpoint(), ClientOptions{}, plan, 16, {});
  for (size_t i = 0; i < times.size(); ++i) {
    ASSERT_TRUE(point.requests[i].ok);
    EXPECT_NEAR(point.requests[i].send_s, times[i], 0.01) << i;
  }
}

TEST(BenchEndpoint, ParsesUrlsAndRejectsBadOnes) {
  auto e = parse_endpoint("http://localhost:8080/api/");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->host, "localhost");
  EXPECT_EQ(e->port, 8080);
  EXPECT_EQ(e->prefix, "/api");
  EXPECT_FALSE(parse_endpoint("https://x:1").ok());
  EXPECT_FALSE(parse_endpoint("http://x:abc").ok());
  EXPECT_FALSE(parse_endpoint("http://:80").ok());
}

}  // namespace
}  // namespace strata::bench
