// Worker-group scaling on the CPU: run under mpirun with tp × pp ranks (or alone for one
// rank). Loads a model shard per rank, reports each rank's resident memory after loading,
// then decodes a batch of sequences through the distributed engine and reports tokens/s,
// step time and the time rank 0 spent in tensor-parallel collectives per step.
//
//   bench_parallel --model builtin:llama-110m --dtype bf16 --threads 2           # 1 rank
//   mpirun -np 2 bench_parallel --tp 2 --threads 1 --model builtin:llama-110m --dtype bf16
#include <chrono>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <mpi.h>

#include "kernels/ops.h"
#include "parallel/mpi_communicator.h"
#include "tools/bench/bench_model_flags.h"
#include "parallel/parallel_context.h"
#include "worker/engine/engine.h"
#include "worker/engine/kv_capacity.h"
#include "worker/model/model_loader.h"

namespace {

double resident_mib() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      double kb;
      in >> kb;
      return kb / 1024.0;
    }
    in.ignore(1 << 12, '\n');
  }
  return 0;
}

}  // namespace

namespace strata {
namespace {

struct DecodeTally {
  int64_t tokens = 0, steps = 0;
  double seconds = 0, collective_seconds = 0;
};

// Serves num_seqs greedy requests to completion; tallies the decode-only steps.
DecodeTally run_decode(Engine& engine, int num_seqs, int prompt, int output) {
  for (int i = 0; i < num_seqs; ++i) {
    Request r{.id = static_cast<RequestId>(i + 1)};
    for (int t = 0; t < prompt; ++t) r.prompt_ids.push_back(3 + (i * 131 + t * 7) % 30000);
    r.sampling.temperature = 0;
    r.sampling.ignore_eos = true;
    r.sampling.max_tokens = output;
    (void)engine.add_request(r);
  }
  DecodeTally tally;
  while (engine.has_unfinished()) {
    engine.step();
    const EngineStepStats& st = engine.last_step();
    if (st.num_prefill_tokens == 0) {
      tally.tokens += st.num_decode_tokens;
      tally.seconds += st.seconds;
      tally.collective_seconds += engine.last_collective_seconds();
      ++tally.steps;
    }
  }
  return tally;
}

}  // namespace
}  // namespace strata

int main(int argc, char** argv) {
  using namespace strata;
  CLI::App app{"strata worker-group scaling benchmark"};
  bench::BenchModelFlags model_flags;
  int tp = 1, pp = 1, num_seqs = 16, prompt = 128, output = 64;
  model_flags.add_to(app);
  app.add_option("--tp", tp)->capture_default_str();
  app.add_option("--pp", pp)->capture_default_str();
  app.add_option("--num-seqs", num_seqs)->capture_default_str();
  app.add_option("--prompt-tokens", prompt)->capture_default_str();
  app.add_option("--output-tokens", output)->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const bool multi = tp * pp > 1;
  ParallelContext ctx = ParallelContext::single();
  if (multi) {
    if (!mpi_initialize(&argc, &argv).ok()) return 2;
    auto made = ParallelContext::mpi(tp, pp);
    if (!made.ok()) {
      std::cerr << made.status().message() << "\n";
      mpi_abort_group(2);
    }
    ctx = std::move(made).value();
  }
  const double rss_before = resident_mib();
  auto model = model_flags.load(ctx.topology);
  if (!model.ok()) {
    std::cerr << model.status().message() << "\n";
    if (multi) mpi_abort_group(2);
    return 2;
  }
  double rss = resident_mib();
  std::vector<double> all_rss(static_cast<size_t>(tp * pp), rss);
  if (multi) MPI_Gather(&rss, 1, MPI_DOUBLE, all_rss.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);

  EngineConfig config;
  config.device = (*model)->weights.device;
  config.scheduler.max_num_seqs = num_seqs;
  config.scheduler.max_num_batched_tokens = std::max(256, num_seqs * prompt);
  config.kv_cache_bytes = kv_block_bytes(**model, config) *
                          num_seqs * ((prompt + output) / 16 + 2);
  if (!ctx.topology.is_driver()) {
    const Status st = run_engine_follower(**model, config, ctx);
    ctx = ParallelContext::single();
    mpi_finalize();
    return st.ok() ? 0 : 1;
  }
  auto engine = Engine::create(**model, config, multi ? &ctx : nullptr);
  if (!engine.ok()) {
    std::cerr << engine.status().message() << "\n";
    if (multi) mpi_abort_group(2);
    return 2;
  }
  const DecodeTally tally = run_decode(**engine, num_seqs, prompt, output);
  engine->reset();
  double max_rss = 0;
  for (double r : all_rss) max_rss = std::max(max_rss, r);
  std::cout << fmt::format(
      "| {} | tp {} × pp {} | {} threads/rank | {:.0f} MiB | {:.1f} | {:.1f} ms | {:.2f} ms |\n",
      (*model)->config.name, tp, pp, kernels::cpu_threads(), max_rss - rss_before,
      tally.tokens / tally.seconds, 1e3 * tally.seconds / tally.steps,
      1e3 * tally.collective_seconds / tally.steps);
  ctx = ParallelContext::single();
  if (multi) mpi_finalize();
  return 0;
}
