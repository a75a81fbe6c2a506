#include "router/hello_check.h"

#include <fmt/format.h>

namespace strata::router {

std::string hello_refusal(const std::string& identity, const wire::Hello& hello, int64_t tokenizer_vocab_size) {
  if (hello.group_id != identity) {
    // It would register under a name that is not its own (and keep reporting for another).
    return fmt::format("a Hello for worker group `{}` came over the connection of `{}`; each group "
                       "registers over its own connection (its --group-id is its socket's routing id)",
                       hello.group_id, identity);
  }
  if (hello.vocab_size < tokenizer_vocab_size) {
    return fmt::format("worker group {} serves {} with a vocabulary of {} tokens, but the router's tokenizer "
                       "has {}: its token ids would be out of the model's range. Give the router the model's "
                       "own tokenizer (--tokenizer), or serve the model this tokenizer belongs to",
                       identity, hello.model_name, hello.vocab_size, tokenizer_vocab_size);
  }
  return "";
}

}  // namespace strata::router
