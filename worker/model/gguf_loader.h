// The pieces of the GGUF loader (load_gguf_model in model_loader.h) that tests and tools
// use on their own: the config a file's metadata describes, and its tensors as a
// WeightSource for build_model_weights.
#pragma once

#include <memory>

#include "common/gguf/gguf_file.h"
#include "worker/model/model_config.h"
#include "worker/model/model_weights.h"

namespace strata {

// From `general.architecture` (llama or qwen2) and its `{arch}.*` keys; errors name the file
// and the key.
StatusOr<ModelConfig> read_gguf_config(const gguf::GgufFile& file);

// The file's tensors by role; `file` must outlive the source.
std::unique_ptr<WeightSource> make_gguf_weight_source(const gguf::GgufFile& file,
                                                      const ModelConfig& config);

}  // namespace strata
