// The router ↔ worker transport end to end: a real strata-worker process serving builtin:tiny
// and a Dispatcher in this process, over TCP on 127.0.0.1. Every worker started here is
// killed when its test ends, passes or fails (and by the kernel if this process dies).
#include "router/dispatcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace strata::router {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A child process; the destructor SIGKILLs and reaps it if it still runs.
class Process {
 public:
  // `stderr_path`: where the child's stderr goes ("" ⇒ inherited).
  Process(std::vector<std::string> args, const std::string& stderr_path = "") {
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
      if (!stderr_path.empty()) {
        const int fd = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) dup2(fd, STDERR_FILENO);
      }
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~Process() {
    if (running()) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  bool started() const { return pid_ > 0; }
  bool running() {
    if (pid_ <= 0 || exit_status_) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) exit_status_ = status;
    return !exit_status_;
  }
  void signal(int sig) {
    if (running()) kill(pid_, sig);
  }
  // The exit code once the process ends within `timeout`; nullopt if it is still running.
  // A death by signal reads as 128 + signal.
  std::optional<int> wait_exit(milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (running() && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(10));
    if (!exit_status_) return std::nullopt;
    return WIFEXITED(*exit_status_) ? WEXITSTATUS(*exit_status_) : 128 + WTERMSIG(*exit_status_);
  }

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

std::string worker_binary() { return std::string(STRATA_BINARY_DIR) + "/bin/strata-worker"; }

std::unique_ptr<Process> start_worker(const std::string& endpoint, const std::string& group_id) {
  return std::make_unique<Process>(std::vector<std::string>{
      worker_binary(), "--model", "builtin:tiny", "--router", endpoint, "--group-id", group_id,
      "--threads", "1", "--kv-cache-mb", "16", "--max-num-seqs", "32",
      "--max-num-batched-tokens", "256", "--heartbeat-ms", "100", "--log-level", "warn"});
}

// Waits until the dispatcher has a ready group; fails early when the worker dies.
::testing::AssertionResult wait_ready(Dispatcher& dispatcher, Process& worker, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (dispatcher.any_ready()) return ::testing::AssertionSuccess();
    if (!worker.running()) return ::testing::AssertionFailure() << "the worker exited before ready";
    std::this_thread::sleep_for(milliseconds(10));
  }
  return ::testing::AssertionFailure() << "no ready group after " << timeout.count() << " ms";
}

// Collects every request's outputs (callbacks run on the dispatcher's IO thread).
class Collector {
 public:
  struct Result {
    std::vector<int32_t> tokens;
    std::string finish_reason;
    std::string error;
    int num_outputs = 0;
    int num_finishes = 0;
  };

  OutputCallback callback() {
    return [this](const wire::TokenOutput& out) {
      std::lock_guard lock(mu_);
      Result& r = results_[out.id];
      r.tokens.insert(r.tokens.end(), out.token_ids.begin(), out.token_ids.end());
      ++r.num_outputs;
      if (out.finished()) {
        r.finish_reason = out.finish_reason;
        r.error = out.error;
        ++r.num_finishes;
      }
      changed_.notify_all();
    };
  }

  // Waits until `pred(results)` holds; false on timeout.
  template <typename Pred>
  bool wait(milliseconds timeout, Pred pred) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return pred(results_); });
  }
  bool wait_finished(const std::vector<uint64_t>& ids, milliseconds timeout) {
    return wait(timeout, [&](const std::map<uint64_t, Result>& results) {
      for (uint64_t id : ids) {
        auto it = results.find(id);
        if (it == results.end() || it->second.finish_reason.empty()) return false;
      }
      return true;
    });
  }
  Result get(uint64_t id) {
    std::lock_guard lock(mu_);
    return results_[id];
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::map<uint64_t, Result> results_;
};

wire::WireRequest make_request(uint64_t id, int32_t max_tokens, uint64_t seed, int32_t prompt_len) {
  wire::WireRequest r;
  r.id = id;
  for (int32_t i = 0; i < prompt_len; ++i) r.prompt_ids.push_back(static_cast<int32_t>((id * 7 + i * 13) % 500 + 3));
  r.sampling.temperature = 0.8f;
  r.sampling.seed = seed;
  r.sampling.max_tokens = max_tokens;
  r.sampling.ignore_eos = true;
  return r;
}

class TransportE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(worker_binary())) GTEST_SKIP() << worker_binary() << " not built";
    dispatcher_ = std::make_unique<Dispatcher>(
        DispatcherConfig{.endpoint = "tcp://127.0.0.1:*", .heartbeat_timeout_ms = 1000});
    // "*" binds port 0: the kernel picks a free port, read back through endpoint().
    ASSERT_TRUE(dispatcher_->start().ok());
    endpoint_ = dispatcher_->endpoint();
    ASSERT_NE(endpoint_.find("127.0.0.1:"), std::string::npos) << endpoint_;
  }
  void TearDown() override {
    worker_.reset();  // SIGKILL if still running
    if (dispatcher_) dispatcher_->stop();
  }

  std::unique_ptr<Dispatcher> dispatcher_;
  std::string endpoint_;
  std::unique_ptr<Process> worker_;
};

TEST_F(TransportE2E, ServesAbortsRefusesAndFailsOverWhenTheWorkerDies) {
  worker_ = start_worker(endpoint_, "g0");
  ASSERT_TRUE(worker_->started());
  ASSERT_TRUE(wait_ready(*dispatcher_, *worker_, milliseconds(10000)));
  {
    const std::vector<GroupInfo> groups = dispatcher_->groups();
    ASSERT_EQ(groups.size(), 1u);
    EXPECT_EQ(groups[0].group_id, "g0");
    EXPECT_EQ(groups[0].model_name, "builtin:tiny");
    EXPECT_EQ(groups[0].vocab_size, 512);
    EXPECT_GT(groups[0].kv.total_blocks, 0);
  }

  // 20 seeded requests; 0 and 1 are the same request, so they must produce the same tokens.
  Collector collector;
  std::vector<uint64_t> ids;
  std::map<uint64_t, int32_t> max_tokens;
  for (uint64_t i = 0; i < 20; ++i) {
    const uint64_t like = i == 1 ? 0 : i;
    wire::WireRequest r = make_request(like, 8 + static_cast<int32_t>(like % 7), /*seed=*/like,
                                       3 + static_cast<int32_t>(like % 11));
    r.id = i;
    if (i == 2) r.sampling.logprobs = 2;
    max_tokens[i] = r.sampling.max_tokens;
    ids.push_back(i);
    ASSERT_TRUE(dispatcher_->submit_to("g0", r, collector.callback()).ok());
  }
  // One request the worker must refuse (prompt longer than the 2048-token context), and one
  // long one to abort once it has started.
  ASSERT_TRUE(dispatcher_->submit_to("g0", make_request(100, 4, 1, 3000), collector.callback()).ok());
  ASSERT_TRUE(dispatcher_->submit_to("g0", make_request(200, 2000, 2, 4), collector.callback()).ok());
  EXPECT_EQ(dispatcher_->submit_to("g0", make_request(200, 4, 2, 4), collector.callback()).code(),
            StatusCode::kInvalidArgument);  // the id is in flight
  ASSERT_TRUE(collector.wait(milliseconds(5000), [](const auto& results) {
    auto it = results.find(200);
    return it != results.end() && !it->second.tokens.empty();
  }));
  dispatcher_->abort(200);

  ids.push_back(100);
  ids.push_back(200);
  ASSERT_TRUE(collector.wait_finished(ids, milliseconds(8000)));
  for (uint64_t i = 0; i < 20; ++i) {
    const Collector::Result r = collector.get(i);
    EXPECT_EQ(r.finish_reason, "length") << "request " << i << ": " << r.error;
    EXPECT_EQ(static_cast<int32_t>(r.tokens.size()), max_tokens[i]) << "request " << i;
    EXPECT_EQ(r.num_finishes, 1) << "request " << i;
    for (int32_t t : r.tokens) EXPECT_TRUE(t >= 0 && t < 512) << t;
  }
  EXPECT_EQ(collector.get(0).tokens, collector.get(1).tokens) << "same seed and request";
  const Collector::Result refused = collector.get(100);
  EXPECT_EQ(refused.finish_reason, "error");
  EXPECT_NE(refused.error.find("3000"), std::string::npos) << refused.error;
  const Collector::Result aborted = collector.get(200);
  EXPECT_EQ(aborted.finish_reason, "abort");
  EXPECT_LT(aborted.tokens.size(), 2000u);

  // Every block is back once nothing runs.
  const auto kv_deadline = Clock::now() + milliseconds(3000);
  GroupInfo info;
  do {
    info = dispatcher_->groups().at(0);
    if (info.kv.free_blocks == info.kv.total_blocks && info.kv.num_running == 0) break;
    std::this_thread::sleep_for(milliseconds(20));
  } while (Clock::now() < kv_deadline);
  EXPECT_EQ(info.kv.free_blocks, info.kv.total_blocks);
  EXPECT_EQ(info.kv.num_running, 0);
  EXPECT_EQ(info.kv.num_waiting, 0);
  EXPECT_EQ(info.num_in_flight, 0);
  EXPECT_GT(info.num_step_messages, 0u);
  EXPECT_GT(info.num_output_tokens, 200u);
  EXPECT_TRUE(info.alive);

  // The worker dies mid-generation: its requests fail, retriably, at once.
  std::vector<uint64_t> doomed = {300, 301, 302};
  for (uint64_t id : doomed) {
    ASSERT_TRUE(dispatcher_->submit_to("g0", make_request(id, 2000, id, 5), collector.callback()).ok());
  }
  ASSERT_TRUE(collector.wait(milliseconds(5000), [&](const auto& results) {
    for (uint64_t id : doomed) {
      auto it = results.find(id);
      if (it == results.end() || it->second.tokens.empty()) return false;
    }
    return true;
  }));
  const auto killed_at = Clock::now();
  worker_->signal(SIGKILL);
  ASSERT_TRUE(collector.wait_finished(doomed, milliseconds(3000)));
  const auto failed_after = std::chrono::duration_cast<milliseconds>(Clock::now() - killed_at);
  // The kernel closes a killed process's connection: the dispatcher sees it at once, well
  // before the heartbeat timeout (1000 ms) would have.
  EXPECT_LE(failed_after.count(), 500) << "the connection closed, yet the group was failed by its heartbeat timeout";
  for (uint64_t id : doomed) {
    const Collector::Result r = collector.get(id);
    EXPECT_EQ(r.finish_reason, "error");
    EXPECT_EQ(r.error, "worker group g0 failed: its connection to the router closed (the process exited or "
                       "was killed); retry the request");
    EXPECT_EQ(r.num_finishes, 1);
  }
  const Status late = dispatcher_->submit_to("g0", make_request(400, 4, 1, 3), collector.callback());
  EXPECT_EQ(late.code(), StatusCode::kUnavailable) << late.to_string();
  EXPECT_FALSE(dispatcher_->any_ready());
  EXPECT_FALSE(dispatcher_->groups().at(0).alive);
}

TEST_F(TransportE2E, ShutdownMessageAndSigtermEndTheWorkerCleanly) {
  worker_ = start_worker(endpoint_, "g-shutdown");
  ASSERT_TRUE(wait_ready(*dispatcher_, *worker_, milliseconds(10000)));
  dispatcher_->shutdown_groups("test over");
  EXPECT_EQ(worker_->wait_exit(milliseconds(5000)), std::optional<int>(0));

  worker_ = start_worker(endpoint_, "g-sigterm");
  // The first group is gone but not yet timed out; wait for the new one by name.
  const auto deadline = Clock::now() + milliseconds(10000);
  bool ready = false;
  while (!ready && Clock::now() < deadline && worker_->running()) {
    for (const GroupInfo& g : dispatcher_->groups()) ready |= g.group_id == "g-sigterm" && g.ready;
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_TRUE(ready);
  // A request in flight when SIGTERM comes is answered with a retriable error, not dropped.
  Collector collector;
  ASSERT_TRUE(dispatcher_->submit_to("g-sigterm", make_request(1, 2000, 1, 4), collector.callback()).ok());
  ASSERT_TRUE(collector.wait(milliseconds(5000), [](const auto& results) {
    auto it = results.find(1);
    return it != results.end() && !it->second.tokens.empty();
  }));
  worker_->signal(SIGTERM);
  EXPECT_EQ(worker_->wait_exit(milliseconds(5000)), std::optional<int>(0));
  ASSERT_TRUE(collector.wait_finished({1}, milliseconds(2000)));
  EXPECT_EQ(collector.get(1).finish_reason, "error");
  EXPECT_NE(collector.get(1).error.find("shutting down"), std::string::npos) << collector.get(1).error;
}

TEST(TransportWorkerCli, BadModelPathExitsNonZeroWithAClearMessage) {
  if (!std::filesystem::exists(worker_binary())) GTEST_SKIP() << worker_binary() << " not built";
  const std::string log = ::testing::TempDir() + "strata_worker_bad_model.log";
  Process worker({worker_binary(), "--model", "/nonexistent/model.bin", "--router",
                  "tcp://127.0.0.1:1"},
                 log);
  const std::optional<int> code = worker.wait_exit(milliseconds(10000));
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("/nonexistent/model.bin"), std::string::npos) << text.str();
}

}  // namespace
}  // namespace strata::router
