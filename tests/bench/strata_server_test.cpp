// bench against a real `strata serve --model builtin:tiny` on loopback: the token counts
// bench reports equal the server's usage counts, TTFT <= E2E for every request, and the
// `strata bench` command writes its JSON, Markdown and plots.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "tools/bench/bench_report.h"
#include "tools/bench/load_runner.h"
#include "tools/bench/prompts.h"

namespace strata::bench {
namespace {

const std::string kBin = std::string(STRATA_BINARY_DIR) + "/bin/";

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

pid_t spawn(const std::vector<std::string>& args) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(argv[0], argv.data());
  _exit(127);
}

// One `strata serve` for every test in this file; stopped (SIGTERM, then SIGKILL) at the end.
class StrataServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    port_ = free_port();
    pid_ = spawn({kBin + "strata", "serve", "--model", "builtin:tiny", "--port", std::to_string(port_),
                  "--threads", "1", "--log-level", "warn"});
    httplib::Client c("127.0.0.1", port_);
    for (int i = 0; i < 600; ++i) {
      if (auto res = c.Get("/ready"); res && res->status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  static void TearDownTestSuite() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  void SetUp() override {
    httplib::Client c("127.0.0.1", port_);
    auto res = c.Get("/ready");
    ASSERT_TRUE(res && res->status == 200) << "strata serve did not become ready on port " << port_;
  }
  static Endpoint endpoint() { return Endpoint{.host = "127.0.0.1", .port = port_, .prefix = ""}; }

  static inline int port_ = 0;
  static inline pid_t pid_ = -1;
};

TEST_F(StrataServer, CountsEqualServerUsageAndTtftIsAtMostE2e) {
  PromptSource prompts = PromptSource::random_ids(3, 258, 7);
  std::vector<PlannedRequest> plan;
  for (int i = 0; i < 12; ++i) {
    plan.push_back({.send_s = 0, .spec = {.prompt_ids = prompts.next(17 + i), .output_tokens = 5 + i}});
  }
  auto model = fetch_first_model(endpoint());
  ASSERT_TRUE(model.ok()) << model.status().message();
  const LoadPointResult point = run_load_point(endpoint(), ClientOptions{.model = *model}, plan, 4, {});
  for (size_t i = 0; i < point.requests.size(); ++i) {
    const RequestResult& r = point.requests[i];
    ASSERT_TRUE(r.ok) << i << ": " << r.failure;
    ASSERT_TRUE(r.usage_prompt_tokens && r.usage_completion_tokens) << i << ": no usage chunk";
    EXPECT_EQ(r.input_tokens, 17 + static_cast<int>(i));
    EXPECT_EQ(r.input_tokens, *r.usage_prompt_tokens) << i;
    EXPECT_EQ(r.output_tokens, 5 + static_cast<int>(i)) << i;
    EXPECT_EQ(r.output_tokens, *r.usage_completion_tokens) << i;
    EXPECT_EQ(r.itl_s.size(), static_cast<size_t>(r.output_tokens - 1)) << i;
    EXPECT_GT(r.ttft_s, 0);
    EXPECT_LE(r.ttft_s, r.e2e_s) << i;
  }
  EXPECT_EQ(summarize(point, Slo{}).usage_mismatches, 0);
}

TEST_F(StrataServer, CorpusPromptsHaveTheExactTokenCount) {
  auto ids = tokenize_remote(endpoint(), "The quick brown fox jumps over the lazy dog. ");
  ASSERT_TRUE(ids.ok()) << ids.status().message();
  PromptSource prompts = PromptSource::corpus(*ids, 1);
  StreamClient client(endpoint(), ClientOptions{});
  const RequestResult r = client.run({.prompt_ids = prompts.next(100), .output_tokens = 3});
  ASSERT_TRUE(r.ok) << r.failure;
  EXPECT_EQ(r.usage_prompt_tokens.value_or(-1), 100);
  EXPECT_EQ(r.usage_completion_tokens.value_or(-1), 3);
}

TEST_F(StrataServer, BenchCommandWritesJsonMarkdownAndPlots) {
  const auto dir = std::filesystem::temp_directory_path() / ("strata_bench_e2e_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const pid_t pid = spawn({kBin + "strata", "bench", "--url", "http://127.0.0.1:" + std::to_string(port_),
                           "--mode", "open", "--request-rate", "20,40", "--num-requests", "6", "--input-tokens",
                           "16", "--output-tokens", "4", "--output-json", (dir / "r.json").string(), "--output-md",
                           (dir / "r.md").string(), "--plot-dir", (dir / "plots").string()});
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::ifstream in(dir / "r.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  ASSERT_EQ(j["load_points"].size(), 2u);
  for (const auto& p : j["load_points"]) {
    EXPECT_EQ(p["num_ok"], 6);
    EXPECT_EQ(p["output_tokens"], 24);
    EXPECT_EQ(p["requests"].size(), 6u);
  }
  EXPECT_TRUE(std::filesystem::file_size(dir / "r.md") > 0);
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0) {
    for (const char* png : {"ttft_cdf.png", "itl_cdf.png", "e2e_cdf.png", "throughput.png", "latency_vs_load.png"}) {
      EXPECT_TRUE(std::filesystem::exists(dir / "plots" / png)) << png;
    }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace strata::bench
