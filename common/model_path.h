// What --model and --tokenizer name, checked before anything loads or starts, so the first
// message a user sees is about the path they typed rather than a symptom further on (a
// missing tokenizer, a header field). strata-router, strata-worker (through load_model),
// `strata serve` and `strata generate` all check here.
#pragma once

#include <string>

#include "common/status.h"

namespace strata {

// ok for builtin:NAME (the name itself is checked against the presets where they live, in
// the worker), an existing directory, or an existing file that is not a llama2.c
// tokenizer; else an error naming the path and the kinds of model accepted.
Status check_model_path(const std::string& model);

// The tokenizer to use with `model`: `tokenizer` when given (it must exist and must not be
// a llama2.c checkpoint), else the one found next to the model (tokenizer_discovery.h).
// Checks the model path first; an error says what to pass when no tokenizer is found.
StatusOr<std::string> resolve_tokenizer_path(const std::string& model, const std::string& tokenizer);

}  // namespace strata
