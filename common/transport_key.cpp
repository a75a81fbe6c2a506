#include "common/transport_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <string_view>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace strata {
namespace {

constexpr size_t kZ85KeyLength = 40;

bool is_z85_key(const std::string& text) {
  if (text.size() != kZ85KeyLength) return false;
  std::array<uint8_t, 32> bytes{};
  return zmq_z85_decode(bytes.data(), text.c_str()) != nullptr;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// `name = "value"` → value; nullopt when the line does not set `name`.
std::optional<std::string> field_value(std::string_view line, std::string_view name) {
  line = trim(line);
  if (line.substr(0, name.size()) != name) return std::nullopt;
  std::string_view rest = trim(line.substr(name.size()));
  if (rest.empty() || rest.front() != '=') return std::nullopt;
  rest = trim(rest.substr(1));
  if (rest.size() >= 2 && rest.front() == '"' && rest.back() == '"') rest = rest.substr(1, rest.size() - 2);
  return std::string(rest);
}

}  // namespace

TransportKey generate_transport_key() {
  std::array<char, kZ85KeyLength + 1> public_key{}, secret_key{};
  if (zmq_curve_keypair(public_key.data(), secret_key.data()) != 0) {
    throw std::runtime_error("libzmq has no CURVE support (built without libsodium)");
  }
  return {public_key.data(), secret_key.data()};
}

StatusOr<TransportKey> load_transport_key(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return not_found("transport key file {}: cannot be read ({}); create one with `strata keygen {}`", path,
                     std::strerror(errno), path);
  }
  TransportKey key;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (trim(line).substr(0, 1) == "#") continue;
    for (auto [name, field] : {std::pair{"public-key", &key.public_key}, {"secret-key", &key.secret_key}}) {
      const std::optional<std::string> value = field_value(line, name);
      if (!value) continue;
      if (!is_z85_key(*value)) {
        return invalid_argument("transport key file {} line {}: `{}` must be a 40-character Z85 key in quotes",
                                path, number, name);
      }
      *field = *value;
    }
  }
  if (key.secret_key.empty()) {
    return invalid_argument("transport key file {}: `secret-key` is missing (it is a secret certificate, "
                            "written by `strata keygen`)", path);
  }
  std::array<char, kZ85KeyLength + 1> derived{};
  if (zmq_curve_public(derived.data(), key.secret_key.c_str()) != 0) {
    return internal_error("libzmq has no CURVE support (built without libsodium)");
  }
  if (!key.public_key.empty() && key.public_key != derived.data()) {
    return invalid_argument("transport key file {}: `public-key` does not belong to `secret-key`", path);
  }
  key.public_key = derived.data();
  struct stat st{};
  if (stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    spdlog::warn("transport key file {} is readable by other users (mode {:o}); whoever reads it can pose as "
                 "a worker group: chmod 600 it", path, st.st_mode & 0777);
  }
  return key;
}

Status write_transport_key(const std::string& path, const TransportKey& key) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return invalid_argument("cannot create transport key file {}: {}", path, std::strerror(errno));
  }
  const std::string text = fmt::format(
      "#   strata transport key (a ZeroMQ CURVE secret certificate).\n"
      "#   Whoever holds this file can register worker groups with the router: keep it secret.\n"
      "curve\n    public-key = \"{}\"\n    secret-key = \"{}\"\n",
      key.public_key, key.secret_key);
  const bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const bool closed = close(fd) == 0;
  if (!written || !closed) return internal_error("cannot write transport key file {}: {}", path, std::strerror(errno));
  return ok_status();
}

void use_as_curve_server(zmq::socket_t& socket, const TransportKey& key) {
  socket.set(zmq::sockopt::zap_domain, kTransportZapDomain);
  socket.set(zmq::sockopt::curve_server, true);
  socket.set(zmq::sockopt::curve_secretkey, key.secret_key);
}

void use_as_curve_client(zmq::socket_t& socket, const TransportKey& key) {
  socket.set(zmq::sockopt::curve_serverkey, key.public_key);
  socket.set(zmq::sockopt::curve_publickey, key.public_key);
  socket.set(zmq::sockopt::curve_secretkey, key.secret_key);
}

}  // namespace strata
