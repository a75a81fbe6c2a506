#include "tools/bench/load_runner.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <random>
#include <thread>

namespace strata::bench {
namespace {

using Clock = std::chrono::steady_clock;

double now_s() {
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

}  // namespace

std::vector<double> poisson_send_times(int n, double rate_per_s, uint64_t seed) {
  std::vector<double> times(static_cast<size_t>(std::max(n, 0)), 0.0);
  if (!(rate_per_s > 0) || std::isinf(rate_per_s)) return times;
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap(rate_per_s);
  double t = 0;
  for (double& s : times) {
    s = t;
    t += gap(rng);
  }
  return times;
}

LoadPointResult run_load_point(const Endpoint& endpoint, const ClientOptions& options,
                               std::vector<PlannedRequest> plan, int num_clients,
                               const std::function<void(int, int, int)>& progress) {
  LoadPointResult out;
  const int total = static_cast<int>(plan.size());
  out.requests.resize(plan.size());
  std::atomic<int> next{0};
  std::mutex progress_mu;
  int done = 0, failed = 0;
  const Clock::time_point t0 = Clock::now();
  auto worker = [&] {
    StreamClient client(endpoint, options);
    for (;;) {
      const int i = next.fetch_add(1);
      if (i >= total) return;
      const PlannedRequest& p = plan[static_cast<size_t>(i)];
      std::this_thread::sleep_until(t0 + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(p.send_s)));
      const double sent_s = std::chrono::duration<double>(Clock::now() - t0).count();
      RequestResult r = client.run(p.spec);
      r.send_s = sent_s;
      const bool ok = r.ok;
      out.requests[static_cast<size_t>(i)] = std::move(r);
      std::lock_guard lock(progress_mu);
      ++done;
      failed += !ok;
      if (progress) progress(done, failed, total);
    }
  };
  const int threads = std::clamp(num_clients, 1, std::max(total, 1));
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  double first = 1e300, last = 0;
  for (const RequestResult& r : out.requests) {
    first = std::min(first, r.send_s);
    last = std::max(last, r.send_s + r.e2e_s);
  }
  out.duration_s = total > 0 ? last - first : 0;
  return out;
}

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)), tty_(isatty(STDERR_FILENO) != 0), start_s_(now_s()) {}

void ProgressBar::update(int done, int failed, int total) {
  const double elapsed = now_s() - start_s_;
  if (tty_) {
    constexpr int kWidth = 30;
    const int filled = total > 0 ? done * kWidth / total : kWidth;
    std::fprintf(stderr, "\r%s [%.*s%*s] %d/%d done, %d failed, %.1f s", label_.c_str(), filled,
                 "##############################", kWidth - filled, "", done, total, failed, elapsed);
    std::fflush(stderr);
    return;
  }
  const int decile = total > 0 ? done * 10 / total : 10;
  if (decile != last_decile_) {
    last_decile_ = decile;
    std::fprintf(stderr, "%s: %d/%d done, %d failed, %.1f s\n", label_.c_str(), done, total, failed, elapsed);
  }
}

void ProgressBar::finish() {
  if (tty_) std::fprintf(stderr, "\n");
}

}  // namespace strata::bench
