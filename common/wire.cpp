#include "common/wire.h"

#include <array>
#include <chrono>
#include <exception>
#include <utility>

namespace strata::wire {
namespace {

constexpr size_t kNumMessageTypes = std::variant_size_v<Message>;
constexpr std::array<std::string_view, kNumMessageTypes> kTypeNames = {
    "Hello", "AddRequests", "Abort", "StepOutputs", "Heartbeat", "Shutdown"};

using PayloadReader = Message (*)(const msgpack::object&);

template <size_t I>
Message read_payload(const msgpack::object& payload) {
  std::variant_alternative_t<I, Message> message;
  payload.convert(message);  // throws msgpack::type_error on a mismatch
  return message;
}

template <size_t... I>
constexpr std::array<PayloadReader, sizeof...(I)> make_readers(std::index_sequence<I...>) {
  return {&read_payload<I>...};
}
constexpr auto kReaders = make_readers(std::make_index_sequence<kNumMessageTypes>());

}  // namespace

std::string_view message_type_name(MessageType type) {
  const auto i = static_cast<size_t>(type);
  return i < kNumMessageTypes ? kTypeNames[i] : "unknown";
}

std::string encode(const Message& message) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> packer(buffer);
  packer.pack_array(3);
  packer.pack(kProtocolVersion);
  packer.pack(static_cast<uint8_t>(message.index()));
  std::visit([&](const auto& payload) { packer.pack(payload); }, message);
  return std::string(buffer.data(), buffer.size());
}

StatusOr<Message> decode(std::string_view bytes) {
  try {
    // No container in a well-formed message can hold more elements than there are bytes,
    // so lengths past that are rejected before anything is allocated for them.
    const size_t n = bytes.size();
    const msgpack::unpack_limit limit(n, n, n, n, n, /*depth=*/32);
    size_t offset = 0;
    const msgpack::object_handle handle =
        msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr, limit);
    if (offset != bytes.size()) {
      return data_loss("wire message: {} trailing bytes after the message ({} bytes)",
                       bytes.size() - offset, bytes.size());
    }
    const msgpack::object& frame = handle.get();
    if (frame.type != msgpack::type::ARRAY || frame.via.array.size != 3) {
      return data_loss("wire message: expected the array [version, type, payload]; got msgpack "
                       "type {} ({} bytes)", static_cast<int>(frame.type), bytes.size());
    }
    const msgpack::object* parts = frame.via.array.ptr;
    if (parts[0].type != msgpack::type::POSITIVE_INTEGER) {
      return data_loss("wire message: the protocol version is not an unsigned integer");
    }
    const uint64_t version = parts[0].via.u64;
    if (version != kProtocolVersion) {
      return unimplemented("wire message: protocol version {} from the peer, but this build "
                           "speaks version {}; run the router and workers from one release",
                           version, kProtocolVersion);
    }
    if (parts[1].type != msgpack::type::POSITIVE_INTEGER || parts[1].via.u64 >= kNumMessageTypes) {
      return data_loss("wire message: unknown message type (must be an integer below {})",
                       kNumMessageTypes);
    }
    const auto type = static_cast<size_t>(parts[1].via.u64);
    try {
      return kReaders[type](parts[2]);
    } catch (const std::exception& e) {
      return data_loss("wire message: the {} payload does not match its definition ({})",
                       kTypeNames[type], e.what());
    }
  } catch (const std::exception& e) {
    return data_loss("wire message: not valid msgpack ({} bytes): {}", bytes.size(), e.what());
  }
}

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace strata::wire
