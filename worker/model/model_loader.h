// load_model: one entry point for every model a user can name: a llama2.c `.bin`
// checkpoint, an HF directory (config.json + safetensors), or a `builtin:` preset with
// deterministic random weights. Errors name the file and the tensor or field.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/config_fields.h"
#include "common/status.h"
#include "parallel/topology.h"
#include "worker/model/model_config.h"
#include "worker/model/model_weights.h"

namespace strata {

struct ModelLoadOptions {
  std::optional<DType> dtype;  // matrices' dtype; default: the checkpoint's own
  Topology topology;           // this rank's place in its worker group: it loads only its shard
  // Where the weights go. A GPU is readied first (init_device, capped at
  // gpu_memory_fraction of its memory); its weights stay row-major, the CPU's are packed.
  Device device;
  double gpu_memory_fraction = 0.9;
  // Of the layer matrices (see WeightBuildOptions); nullopt: the checkpoint's own — W8A8
  // for a GGUF whose layers are Q8_0, W4A16 for Q4_0, none otherwise.
  std::optional<Quantization> quantization;

  // The backend the loaders pack the matrices for (nullptr: row-major).
  const kernels::KernelBackend* pack_for() const {
    return device.is_cpu() ? &kernels::cpu_backend() : nullptr;
  }
  // What the loaders pass to build_model_weights, for dense matrices of `matrix_dtype`.
  WeightBuildOptions build_options(DType matrix_dtype) const {
    return {.dtype = matrix_dtype, .quantization = quantization.value_or(Quantization::kNone),
            .pack_for = pack_for()};
  }
};

struct LoadedModel {
  ModelConfig config;
  ModelWeights weights;
  std::string format;            // "llama2c", "hf", "gguf" or "builtin"
  // The tokenizer that goes with the model when one is found next to it ("" if none):
  // tokenizer.json in an HF directory, tokenizer.bin / tok*.bin beside a llama2.c file,
  // the GGUF file itself, "builtin:bytes" for builtin models.
  std::string default_tokenizer;
  // llama2.c models end generation on BOS (as run.c does); HF models on their EOS ids.
  std::vector<int32_t> stop_token_ids;
};

StatusOr<std::unique_ptr<LoadedModel>> load_model(const std::string& path,
                                                  const ModelLoadOptions& options = {});

// Which model to run, in which dtype, where: the settings strata-worker, `strata serve` and
// `strata generate` share.
struct ModelSettings {
  std::string model = "builtin:tiny";
  std::string dtype;  // "" ⇒ the checkpoint's own
  std::string quantization = "auto";
  std::string device = "cpu";
  int threads = 0;

  template <typename V>
  void visit_fields(V& v) {
    v("model", model, "the model: a GGUF file, an HF directory, a llama2.c .bin, or builtin:NAME");
    v("dtype", dtype, "weight dtype: fp32, bf16 or fp16 (default: the checkpoint's)");
    v("quantization", quantization,
      "auto (the checkpoint's own: w8a8 for a Q8_0 GGUF, w4a16 for Q4_0, else none), none, "
      "w8a8 (int8 weights and activations) or w4a16 (int4 weights), applied at load");
    v("threads", threads, "CPU kernel threads (0 = OMP_NUM_THREADS if set, else all cores)", config::Range{0, 4096});
    v("device", device, "where the model runs: cpu, cuda or cuda:N (needs a build with -DSTRATA_CUDA=ON)");
  }
  // The parsed dtype and device for this rank; fails naming the field on a value it cannot
  // parse. gpu_memory_fraction is the engine's (EngineConfig), which also caps the weights.
  StatusOr<ModelLoadOptions> load_options(const Topology& topology, double gpu_memory_fraction) const;
};

// Individual formats (load_model dispatches to these).
StatusOr<std::unique_ptr<LoadedModel>> load_llama2c_model(const std::string& path,
                                                          const ModelLoadOptions& options);
StatusOr<std::unique_ptr<LoadedModel>> load_hf_model(const std::string& dir,
                                                     const ModelLoadOptions& options);
StatusOr<std::unique_ptr<LoadedModel>> load_gguf_model(const std::string& path,
                                                       const ModelLoadOptions& options);

}  // namespace strata
