#include "common/ordered_pool.h"

namespace strata {

OrderedPool::OrderedPool(int num_threads) {
  if (num_threads < 1) num_threads = 1;
  for (int i = 0; i < num_threads; ++i) {
    auto lane = std::make_unique<Lane>();
    Lane* raw = lane.get();
    lane->thread = std::thread([raw] { drain(*raw); });
    lanes_.push_back(std::move(lane));
  }
}

OrderedPool::~OrderedPool() {
  for (auto& lane : lanes_) {
    {
      std::lock_guard<std::mutex> lock(lane->mutex);
      lane->stopping = true;
    }
    lane->ready.notify_one();
  }
  for (auto& lane : lanes_) lane->thread.join();
}

void OrderedPool::submit(uint64_t key, std::function<void()> task) {
  Lane& lane = *lanes_[key % lanes_.size()];
  {
    std::lock_guard<std::mutex> lock(lane.mutex);
    lane.tasks.push_back(std::move(task));
  }
  lane.ready.notify_one();
}

void OrderedPool::drain(Lane& lane) {
  while (true) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(lane.mutex);
      lane.ready.wait(lock, [&] { return lane.stopping || !lane.tasks.empty(); });
      if (lane.tasks.empty()) return;  // stopping, and everything queued has run
      task = std::move(lane.tasks.front());
      lane.tasks.pop_front();
    }
    task();
  }
}

}  // namespace strata
