// Which worker groups the dispatcher refuses to register, and the reason they are told.
#pragma once

#include <cstdint>
#include <string>

#include "common/wire.h"

namespace strata::router {

// Why the Hello that came from routing id `identity` is refused, or "" when the group may
// register: a Hello naming another group than the connection's own, or a model with fewer
// tokens than the router's tokenizer (`tokenizer_vocab_size`, 0 = unchecked) can produce.
// (A second connection with a live group's id never gets this far: the ROUTER socket,
// without handover, does not take it.)
std::string hello_refusal(const std::string& identity, const wire::Hello& hello, int64_t tokenizer_vocab_size);

}  // namespace strata::router
