// strata-worker: one worker group's driver process. Loads a model, builds the engine and
// serves the router over ZeroMQ (worker/server/worker_server.h) until the router says Shutdown or
// the process gets SIGTERM/SIGINT. Logs go to stderr.
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "kernels/device.h"
#include "kernels/dtype.h"
#include "kernels/ops.h"
#include "parallel/mpi_communicator.h"
#include "parallel/parallel_context.h"
#include "parallel/rank_device.h"
#include "worker/engine/engine.h"
#include "worker/engine/speculative/speculative_config.h"
#include "worker/model/model_loader.h"
#include "worker/server/rank_presence.h"
#include "worker/server/worker_options.h"
#include "worker/server/worker_server.h"

namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

extern "C" void on_stop_signal(int) { g_stop.store(true); }

int fail(const strata::Status& status) {
  spdlog::error("strata-worker: {}", status.message());
  return status.code() == strata::StatusCode::kInternal ? 70 : 2;
}

// A rank of a multi-rank group: the device it runs on (one GPU per rank, from its local
// rank) and the group's communicators on that device.
strata::StatusOr<strata::ParallelContext> join_group(const strata::WorkerOptions& options,
                                                     strata::Device& device) {
  STRATA_ASSIGN_OR_RETURN(device, strata::rank_device(device, strata::mpi_world_size(),
                                                      strata::mpi_local_rank(),
                                                      strata::device_count(strata::DeviceType::kCuda)));
  return strata::ParallelContext::mpi(options.tp, options.pp, device);
}

// Every rank but the driver connects to the router too, so that its death is seen at once.
std::unique_ptr<strata::RankPresence> follower_presence(const strata::WorkerServerConfig& config,
                                                        const strata::Topology& topology) {
  if (topology.is_driver()) return nullptr;
  try {
    std::optional<strata::TransportKey> key;
    if (!config.transport_key_file.empty()) key = strata::load_transport_key(config.transport_key_file).value();
    return std::make_unique<strata::RankPresence>(config.router_endpoint, config.group_id, topology.world_rank, key);
  } catch (const std::exception& e) {  // the driver reports a bad endpoint or key file
    spdlog::warn("rank {}: no presence connection to the router: {}", topology.world_rank, e.what());
    return nullptr;
  }
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("strata-worker"));

  strata::WorkerOptions options;
  CLI::App app{"strata-worker: serves one model replica to a strata router over ZeroMQ"};
  std::string config_file;
  app.add_option("--config", config_file, "YAML file whose `worker:` section sets these options");
  // YAML first, flags override it: read --config before binding the flags.
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--config") {
      if (auto st = strata::config::load_yaml(argv[i + 1], "worker", options); !st.ok()) return fail(st);
    }
  }
  strata::config::CliBinder binder(app);
  options.visit_fields(binder);
  CLI11_PARSE(app, argc, argv);
  if (auto st = strata::config::check_ranges(options); !st.ok()) return fail(st);

  spdlog::set_level(spdlog::level::from_str(options.log.log_level));
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  auto server_config = options.server_config();
  if (!server_config.ok()) return fail(server_config.status());
  strata::WorkerServerConfig& config = *server_config;
  const std::string& model_path = options.load.model;
  const int threads = options.load.threads;

  // A group of several ranks is an MPI job: rank 0 serves the router, the others follow it.
  const bool multi_rank = options.tp * options.pp > 1 || std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr;
  strata::ParallelContext parallel = strata::ParallelContext::single();
  if (multi_rank) {
    if (auto st = strata::mpi_initialize(&argc, &argv); !st.ok()) return fail(st);
    auto ctx = join_group(options, config.engine.device);
    if (!ctx.ok()) {
      spdlog::error("strata-worker: {}", ctx.status().message());
      strata::mpi_abort_group(2);
    }
    parallel = std::move(ctx).value();
    if (!parallel.topology.is_driver()) spdlog::set_level(spdlog::level::warn);
  }
  const std::unique_ptr<strata::RankPresence> presence = follower_presence(config, parallel.topology);
  strata::kernels::set_cpu_threads(threads);
  auto load_options = options.load_options(parallel.topology);
  if (!load_options.ok()) return fail(load_options.status());
  load_options->device = config.engine.device;  // a GPU group's rank: its own GPU
  spdlog::info("loading {} onto {}", model_path, load_options->device.to_string());
  auto model = strata::load_model(model_path, *load_options);
  if (!model.ok()) {
    const int code = fail(model.status().with_context(fmt::format("loading `{}`", model_path)));
    if (multi_rank) strata::mpi_abort_group(code);  // the other ranks must not wait for us
    return code;
  }
  spdlog::info("model: {}; CPU kernels {} x {} threads", (*model)->config.summary(),
               strata::kernels::cpu_isa_name(), strata::kernels::cpu_threads());

  auto draft = strata::load_draft_model(config.engine.speculative, model_path, *load_options);
  if (!draft.ok()) {
    const int code = fail(draft.status());
    if (multi_rank) strata::mpi_abort_group(code);
    return code;
  }

  strata::Status status;
  if (parallel.topology.is_driver()) {
    strata::WorkerServer server;
    status = server.run(**model, config, g_stop, multi_rank ? &parallel : nullptr, draft->get());
  } else {
    status = strata::run_engine_follower(**model, config.engine, parallel);
  }
  if (!status.ok()) {
    const int code = fail(status);
    if (multi_rank) strata::mpi_abort_group(code);
    return code;
  }
  parallel = strata::ParallelContext::single();  // free MPI communicators before finalizing
  if (multi_rank) strata::mpi_finalize();
  return 0;
}
