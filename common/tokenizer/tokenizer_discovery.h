// Which tokenizer goes with a model path, found without loading the model (the router
// holds no weights but tokenizes): "builtin:bytes" for builtin: models, tokenizer.json in
// an HF directory, the .gguf file itself for a GGUF model (or for a directory holding
// exactly one .gguf and no tokenizer.json/config.json), tokenizer.bin or the only tok*.bin
// beside a llama2.c checkpoint.
#pragma once

#include <string>

namespace strata {

// "" when none is found (or the choice is ambiguous): the user must pass --tokenizer.
std::string default_tokenizer_for_model(const std::string& model_path);

}  // namespace strata
