// TransportKey: the CurveZMQ key pair a router and its worker groups share. Whoever holds
// the key file can register as a worker group (and so read prompts), nobody else: the
// router is the CURVE server with it and admits only clients that prove the same key
// (router/worker_auth.h); workers are CURVE clients with it. Traffic is encrypted too.
//
// The file is a ZeroMQ certificate (the format of CZMQ's zcert, so `curve_keygen` or czmq
// output works): lines `public-key = "<40 Z85 chars>"` and `secret-key = "<40 Z85 chars>"`,
// `#` comments, anything else ignored. `strata keygen FILE` writes one (mode 0600).
#pragma once

#include <string>

#include <zmq.hpp>

#include "common/status.h"

namespace strata {

struct TransportKey {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters
};

// A fresh random key pair.
TransportKey generate_transport_key();
// Reads `path`; the errors name the file and the field (missing, malformed, or a public key
// that does not belong to the secret key).
StatusOr<TransportKey> load_transport_key(const std::string& path);
// Writes `key` to a new file `path`, readable by its owner only; fails if it exists.
Status write_transport_key(const std::string& path, const TransportKey& key);

// Socket options: the router's socket authenticates with `key` as the CURVE server (and
// asks the ZAP handler about every client), a worker's as a CURVE client of that server.
void use_as_curve_server(zmq::socket_t& socket, const TransportKey& key);
void use_as_curve_client(zmq::socket_t& socket, const TransportKey& key);

// The ZAP domain the router's socket names, so that libzmq consults the handler.
inline constexpr const char* kTransportZapDomain = "strata-workers";

}  // namespace strata
