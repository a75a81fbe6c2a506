// OrderedPool: a fixed set of worker threads where tasks with the same key always run on
// the same thread, in submission order. The router tokenizes and detokenizes on these, so
// one request's token outputs are detokenized in order while different requests proceed in
// parallel, and neither the HTTP threads nor the ZeroMQ thread ever wait on a tokenizer.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace strata {

class OrderedPool {
 public:
  explicit OrderedPool(int num_threads);
  ~OrderedPool();
  OrderedPool(const OrderedPool&) = delete;
  OrderedPool& operator=(const OrderedPool&) = delete;

  void submit(uint64_t key, std::function<void()> task);

  // Runs `fn` on the pool and returns its result (the caller waits; the pool's threads do
  // the work, so the caller's thread pool stays small and tokenizers stay hot in cache).
  template <typename Fn>
  auto run(uint64_t key, Fn fn) -> decltype(fn()) {
    auto task = std::make_shared<std::packaged_task<decltype(fn())()>>(std::move(fn));
    auto result = task->get_future();
    submit(key, [task] { (*task)(); });
    return result.get();
  }

  int size() const { return static_cast<int>(lanes_.size()); }

 private:
  struct Lane {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<std::function<void()>> tasks;
    bool stopping = false;
    std::thread thread;
  };
  static void drain(Lane& lane);

  std::vector<std::unique_ptr<Lane>> lanes_;
};

}  // namespace strata
