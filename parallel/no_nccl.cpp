// The NCCL entry points of a build without CUDA: every GPU group is refused with a message
// that says how to get one (CMake compiles this instead of nccl_communicator.cpp).
#include "parallel/nccl_communicator.h"

namespace strata {
namespace {

Status no_nccl() {
  return unimplemented("a multi-rank worker group on GPUs needs NCCL, and this strata was built "
                       "without CUDA; rebuild with -DSTRATA_CUDA=ON (needs nvcc and NCCL), or "
                       "use --device cpu");
}

}  // namespace

StatusOr<std::unique_ptr<Communicator>> make_nccl_world_communicator(const NcclOptions&) {
  return no_nccl();
}

StatusOr<std::unique_ptr<Communicator>> make_nccl_tp_communicator(const Topology&, const NcclOptions&) {
  return no_nccl();
}

}  // namespace strata
