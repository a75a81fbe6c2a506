// The built-in byte tokenizer of the builtin: models ("builtin:bytes").
// Ids: 0 <unk>, 1 <s> (BOS), 2 </s> (EOS), 3..258 = bytes 0..255. The builtin models have
// vocabularies larger than 259; decode maps any id >= 3 to the byte (id - 3) % 256 so that
// every id such a model samples still decodes to something.
#pragma once

#include <memory>

#include "common/tokenizer/tokenizer.h"

namespace strata {

std::unique_ptr<Tokenizer> make_byte_tokenizer();

}  // namespace strata
