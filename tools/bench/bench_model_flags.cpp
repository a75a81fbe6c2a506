#include "tools/bench/bench_model_flags.h"

#include "common/config_fields.h"
#include "kernels/ops.h"
#include "worker/engine/engine_config.h"

namespace strata::bench {

void BenchModelFlags::add_to(CLI::App& app, bool offer_device) {
  config::CliBinder binder(app);
  if (offer_device) {
    settings.visit_fields(binder);
  } else {
    auto cpu_only = config::except(binder, {"device"});
    settings.visit_fields(cpu_only);
  }
}

StatusOr<ModelLoadOptions> BenchModelFlags::load_options(const Topology& topology) const {
  return settings.load_options(topology, EngineConfig{}.gpu_memory_fraction);
}

StatusOr<std::unique_ptr<LoadedModel>> BenchModelFlags::load(const Topology& topology) const {
  kernels::set_cpu_threads(settings.threads);
  STRATA_ASSIGN_OR_RETURN(const ModelLoadOptions options, load_options(topology));
  return load_model(settings.model, options);
}

}  // namespace strata::bench
