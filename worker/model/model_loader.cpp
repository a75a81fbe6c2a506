#include "worker/model/model_loader.h"

#include <filesystem>

#include "common/gguf/gguf_file.h"
#include "common/model_path.h"
#include "kernels/device.h"

namespace strata {

StatusOr<std::unique_ptr<LoadedModel>> load_builtin_model(const std::string& name,
                                                          const ModelLoadOptions& options);

namespace {

// The one .gguf file of a directory without config.json ("" otherwise).
std::string single_gguf_in(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(fs::path(dir) / "config.json", ec)) return "";
  return gguf::only_gguf_file_in(dir);
}

StatusOr<std::unique_ptr<LoadedModel>> load_on_host(const std::string& path,
                                                    const ModelLoadOptions& options) {
  namespace fs = std::filesystem;
  constexpr std::string_view kBuiltin = "builtin:";
  if (path.rfind(kBuiltin, 0) == 0) return load_builtin_model(path.substr(kBuiltin.size()), options);
  STRATA_RETURN_IF_ERROR(check_model_path(path));
  std::error_code ec;
  if (gguf::is_gguf_file(path)) return load_gguf_model(path, options);
  if (fs::is_directory(path, ec)) {
    if (const std::string only = single_gguf_in(path); !only.empty()) return load_gguf_model(only, options);
    return load_hf_model(path, options);
  }
  if (fs::path(path).filename() == "config.json" || fs::path(path).extension() == ".safetensors") {
    return load_hf_model(fs::path(path).parent_path().string(), options);
  }
  return load_llama2c_model(path, options);
}

}  // namespace

StatusOr<std::unique_ptr<LoadedModel>> load_model(const std::string& path,
                                                  const ModelLoadOptions& options) {
  const Device device = options.device;
  if (!device.is_cpu()) {
    STRATA_RETURN_IF_ERROR(init_device(device, options.gpu_memory_fraction));
  }
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<LoadedModel> model, load_on_host(path, options));
  if (!device.is_cpu()) {
    STRATA_ASSIGN_OR_RETURN(model->weights, copy_model_weights(model->weights, device));
  }
  return model;
}

StatusOr<ModelLoadOptions> ModelSettings::load_options(const Topology& topology,
                                                      double gpu_memory_fraction) const {
  ModelLoadOptions o;
  o.topology = topology;
  if (!dtype.empty()) {
    o.dtype = parse_dtype(dtype);
    if (!o.dtype) return invalid_argument("`dtype` (--dtype) must be fp32, bf16 or fp16. Given: {}", dtype);
  }
  if (quantization != "auto") {
    const std::optional<Quantization> scheme = parse_quantization(quantization);
    if (!scheme) {
      return invalid_argument(
          "`quantization` (--quantization) must be auto, none, w8a8 or w4a16. Given: {}", quantization);
    }
    o.quantization = *scheme;
  }
  STRATA_ASSIGN_OR_RETURN(o.device, parse_device(device));
  o.gpu_memory_fraction = gpu_memory_fraction;
  return o;
}

}  // namespace strata
