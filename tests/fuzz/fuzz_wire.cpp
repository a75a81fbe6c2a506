// The router ↔ worker wire decoder on arbitrary frames (a peer may be another version, or
// not strata at all). A frame that decodes must re-encode to bytes that decode again and
// re-encode identically: the fields survive a round trip.
#include <cstdlib>

#include "common/wire.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto message = strata::wire::decode(strata::fuzz::as_text(data, size));
  if (!message.ok()) return 0;
  const std::string once = strata::wire::encode(*message);
  auto again = strata::wire::decode(once);
  if (!again.ok() || strata::wire::encode(*again) != once) std::abort();
  return 0;
}
