#include "worker/engine/plan_channel.h"

#include <string>

#include "common/check.h"

namespace strata {
namespace {

constexpr int kDriver = 0;
constexpr int64_t kStopSize = -1;  // the size word that means "stop" instead of a plan

template <typename T>
std::string pack(const T& value) {
  msgpack::sbuffer buffer;
  msgpack::pack(buffer, value);
  return std::string(buffer.data(), buffer.size());
}

template <typename T>
T unpack(const std::string& bytes) {
  msgpack::object_handle handle = msgpack::unpack(bytes.data(), bytes.size());
  return handle.get().as<T>();
}

}  // namespace

void broadcast_plan(Communicator& world, const StepPlan& plan) {
  std::string bytes = pack(plan);
  int64_t size = static_cast<int64_t>(bytes.size());
  world.broadcast(&size, sizeof size, kDriver);
  world.broadcast(bytes.data(), bytes.size(), kDriver);
}

void broadcast_stop(Communicator& world) {
  int64_t size = kStopSize;
  world.broadcast(&size, sizeof size, kDriver);
}

std::optional<StepPlan> receive_plan(Communicator& world) {
  int64_t size = 0;
  world.broadcast(&size, sizeof size, kDriver);
  if (size == kStopSize) return std::nullopt;
  STRATA_CHECK(size >= 0);
  std::string bytes(static_cast<size_t>(size), '\0');
  world.broadcast(bytes.data(), bytes.size(), kDriver);
  return unpack<StepPlan>(bytes);
}

void send_step_result(Communicator& world, const StepResult& result, int dest) {
  const std::string bytes = pack(result);
  int64_t size = static_cast<int64_t>(bytes.size());
  world.send(&size, sizeof size, dest);
  world.send(bytes.data(), bytes.size(), dest);
}

StepResult receive_step_result(Communicator& world, int src) {
  int64_t size = 0;
  world.recv(&size, sizeof size, src);
  std::string bytes(static_cast<size_t>(size), '\0');
  world.recv(bytes.data(), bytes.size(), src);
  return unpack<StepResult>(bytes);
}

}  // namespace strata
