#include "router/body_budget.h"

#include <algorithm>
#include <utility>

namespace strata::router {

BodyBudget::Reservation& BodyBudget::Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    release();
    budget_ = std::exchange(other.budget_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void BodyBudget::Reservation::release() {
  if (budget_ != nullptr) std::exchange(budget_, nullptr)->give_back(std::exchange(bytes_, 0));
}

std::optional<BodyBudget::Reservation> BodyBudget::reserve(int64_t bytes, std::chrono::milliseconds wait) {
  bytes = std::clamp<int64_t>(bytes, 0, capacity_);
  std::unique_lock lock(mu_);
  if (!freed_.wait_for(lock, wait, [&] { return in_use_ + bytes <= capacity_; })) return std::nullopt;
  in_use_ += bytes;
  return Reservation(this, bytes);
}

int64_t BodyBudget::in_use() const {
  std::lock_guard lock(mu_);
  return in_use_;
}

void BodyBudget::give_back(int64_t bytes) {
  {
    std::lock_guard lock(mu_);
    in_use_ -= bytes;
  }
  freed_.notify_all();
}

}  // namespace strata::router
