#include "parallel/communicator.h"

#include <cstring>

#include "common/check.h"

namespace strata {
namespace {

class SingleRankCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void all_reduce_sum(float*, size_t) override {}
  void all_gather(const float* in, size_t count, float* out) override {
    if (in != out) std::memmove(out, in, count * sizeof(float));
  }
  void broadcast(void*, size_t, int root) override { STRATA_CHECK(root == 0); }
  // One rank has no peer: a send or recv is a bug in the caller.
  void send(const void*, size_t, int) override { STRATA_CHECK(false); }
  void recv(void*, size_t, int) override { STRATA_CHECK(false); }
};

}  // namespace

std::unique_ptr<Communicator> make_single_rank_communicator() {
  return std::make_unique<SingleRankCommunicator>();
}

}  // namespace strata
