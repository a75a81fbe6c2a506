// Model files as load_model reads them, one target per format (the build defines
// STRATA_FUZZ_SUFFIX: ".gguf", ".safetensors" or ".bin" for llama2.c checkpoints), so a
// corpus of one format is not spent on another's magic checks. Loading goes all the way:
// header, metadata, config, tensor table, dequantizing into the weights.
#include "tests/fuzz/fuzz_support.h"
#include "worker/model/model_loader.h"
#include "worker/model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Bounded: the loaders check sizes against the file, so a small input stays small in memory.
  if (size > (4u << 20)) return 0;
  const std::string path = strata::fuzz::scratch_file(data, size, STRATA_FUZZ_SUFFIX);
  if (std::string_view(STRATA_FUZZ_SUFFIX) == ".safetensors") {
    auto checkpoint = strata::SafetensorsCheckpoint::open(path);
    if (checkpoint.ok()) {
      for (const std::string& name : checkpoint->names()) (void)checkpoint->get(name);
    }
    return 0;
  }
  (void)strata::load_model(path, strata::ModelLoadOptions{});
  return 0;
}
