// BodyBudget: a bound on the request-body bytes the router holds at once. A body is read,
// parsed and tokenized before anything can say it is hopeless (a prompt far past the
// context), and each byte costs a few more on the way (the parsed string, the tokenizer's
// work), so without a bound 64 clients posting 4 MB each push the router past 600 MB. A
// request reserves its declared size before its body is read and gives it back once its
// prompt is tokenized; one that cannot reserve in time is refused (503) unread.
// Plain logic: no HTTP in here.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>

namespace strata::router {

class BodyBudget {
 public:
  explicit BodyBudget(int64_t capacity_bytes) : capacity_(capacity_bytes) {}
  BodyBudget(const BodyBudget&) = delete;
  BodyBudget& operator=(const BodyBudget&) = delete;

  // Bytes held until release() or destruction; movable, not copyable.
  class Reservation {
   public:
    Reservation() = default;
    Reservation(Reservation&& other) noexcept { *this = std::move(other); }
    Reservation& operator=(Reservation&& other) noexcept;
    ~Reservation() { release(); }
    void release();
    int64_t bytes() const { return bytes_; }

   private:
    friend class BodyBudget;
    Reservation(BodyBudget* budget, int64_t bytes) : budget_(budget), bytes_(bytes) {}
    BodyBudget* budget_ = nullptr;
    int64_t bytes_ = 0;
  };

  // Waits up to `wait` for `bytes` (at most the capacity; more is clamped to it) to be free.
  std::optional<Reservation> reserve(int64_t bytes, std::chrono::milliseconds wait);
  int64_t capacity() const { return capacity_; }
  int64_t in_use() const;

 private:
  void give_back(int64_t bytes);

  const int64_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable freed_;
  int64_t in_use_ = 0;
};

}  // namespace strata::router
