// `strata simulate`: replays a trace through the router's scheduling policies and N
// simulated worker groups (tools/sim/), printing what `strata bench` would measure: throughput,
// TTFT and E2E percentiles, preemptions and KV utilization, per time scale and policy.
// With --profile-model it first profiles the real worker on this machine and fits the cost
// model (written to --cost-model-out); --cost-model roofline reads a GPU's off its roofline.
#include <fstream>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "kernels/ops.h"
#include "router/scheduling/router_scheduler.h"
#include "tools/bench/bench_report.h"
#include "tools/bench/prompts.h"
#include "tools/bench/roofline.h"
#include "tools/bench/trace_shaping.h"
#include "tools/sim/profile.h"
#include "tools/sim/simulator.h"
#include "tools/strata/commands.h"
#include "worker/kv/kv_cache.h"
#include "worker/engine/kv_capacity.h"
#include "worker/model/model_loader.h"
#include "worker/server/worker_options.h"

namespace strata::cli {
namespace {

struct SimulateOptions {
  std::vector<std::string> policies = {"on-demand", "reserve-max", "predicted"};
  std::vector<std::string> placements = {"prefix"};
  int groups = 1;
  bench::TraceReplay replay;  // replay.shaping.num_requests: --num-requests, 0 = all rows
  std::string cost_model = "cost-model.json";
  std::string model_shape;  // for KV block sizes (and the roofline); default: --profile-model
  std::string hardware = "h100-sxm";
  std::string hardware_dir = "configs/hardware";
  std::string dtype = "bf16";
  double roofline_efficiency = 1.0;
  int64_t num_blocks = 0;
  std::string profile_model;
  std::vector<int> profile_concurrency = {1, 4, 16, 64};
  int profile_requests = 24;
  std::string cost_model_out = "cost-model.json";
  std::string profile_steps_csv;
  std::string fit_steps;
  std::string output_json, output_md;
  router::RouterSchedulerConfig scheduling;
  WorkerOptions worker;
};

std::vector<sim::SimRequest> to_sim_requests(const std::vector<bench::ShapedRequest>& shaped, double time_scale) {
  std::vector<sim::SimRequest> out;
  for (const bench::ShapedRequest& r : shaped) {
    out.push_back({.arrival_s = r.arrival_s / time_scale, .prompt_tokens = r.input_tokens,
                   .output_tokens = r.output_tokens, .max_tokens = r.max_tokens,
                   .prompt_ids = r.block_ids.empty() ? std::vector<int32_t>{} : bench::block_prompt(r, 0, 1 << 30, 0)});  // no vocabulary here: any ids
  }
  return out;
}

StatusOr<sim::CostModel> profile_and_fit(const SimulateOptions& o, EngineConfig engine_config,
                                         const std::vector<sim::SimRequest>& workload) {
  // The profile measures step cost, not memory pressure: a cache the size of the worker's
  // default keeps the high-concurrency levels from thrashing on recompute.
  engine_config.kv_cache_bytes = 0;
  kernels::set_cpu_threads(o.worker.load.threads);
  STRATA_ASSIGN_OR_RETURN(ModelLoadOptions load_options, o.worker.load_options({}));
  STRATA_ASSIGN_OR_RETURN(auto model, load_model(o.profile_model, load_options));
  STRATA_ASSIGN_OR_RETURN(auto engine, Engine::create(*model, engine_config));
  std::cerr << fmt::format("strata simulate: profiling {} at concurrency {} ({} requests each)\n", o.profile_model,
                           fmt::join(o.profile_concurrency, ","), o.profile_requests);
  STRATA_ASSIGN_OR_RETURN(auto samples,
                          sim::profile_engine(*engine, workload,
                                              {.concurrency = o.profile_concurrency,
                                               .requests_per_level = o.profile_requests}));
  if (!o.profile_steps_csv.empty()) {
    std::ofstream csv(o.profile_steps_csv);
    csv << "prefill_tokens,decode_sequences,context_tokens,seconds\n";
    for (const sim::StepSample& s : samples) {
      csv << s.shape.prefill_tokens << "," << s.shape.decode_sequences << "," << s.shape.context_tokens << ","
          << s.seconds << "\n";
    }
  }
  STRATA_ASSIGN_OR_RETURN(sim::CostModelFit fit, sim::fit_cost_model(samples));
  std::cerr << fmt::format(
      "strata simulate: step_s = {:.3g} + {:.3g}·prefill + {:.3g}·decode_seqs + {:.3g}·context ({})\n", fit.model.a,
      fit.model.b, fit.model.c, fit.model.d, fit.model.source);
  STRATA_RETURN_IF_ERROR(sim::save_cost_model(fit.model, o.cost_model_out));
  std::cerr << "strata simulate: wrote " << o.cost_model_out << "\n";
  return fit.model;
}

// The step-cost model (fitted to a step log, profiled, read off the roofline, or loaded)
// and, where it decides them, the KV blocks per group (roofline: what the GPU memory holds).
struct CostChoice {
  sim::CostModel cost;
  int64_t blocks = 0;
};

// The KV dtype the simulated engine stores: --kv-cache-dtype, "auto" being the weights'
// (--dtype, else the roofline's dtype; bf16 where that is fp8, which no cache holds).
StatusOr<DType> simulated_kv_dtype(const SimulateOptions& o) {
  const std::string& weights = o.worker.load.dtype.empty() ? o.dtype : o.worker.load.dtype;
  STRATA_RETURN_IF_ERROR(o.worker.server.engine.validate_kv_cache_dtype());
  return *o.worker.server.engine.kv_dtype(parse_dtype(weights).value_or(DType::kBF16));
}

StatusOr<CostChoice> roofline_choice(const SimulateOptions& o, const ModelConfig& shape,
                                     int32_t block_size) {
  STRATA_ASSIGN_OR_RETURN(const bench::RooflineDtype dtype, bench::parse_roofline_dtype(o.dtype));
  STRATA_ASSIGN_OR_RETURN(const bench::HardwareSpec hw,
                          bench::load_hardware(o.hardware, resolve_hardware_dir(o.hardware_dir)));
  STRATA_ASSIGN_OR_RETURN(const DType kv_dtype, simulated_kv_dtype(o));
  bench::ModelCosts costs = bench::model_costs(shape, dtype, dtype);
  // What the engine's cache stores per token (int8 included, with its scales).
  costs.kv_bytes_per_token = static_cast<double>(KvCache::bytes_per_block(shape, 1, kv_dtype));
  CostChoice c{.cost = sim::roofline_cost_model(costs, hw, dtype, o.worker.tp, o.roofline_efficiency),
               .blocks = o.num_blocks};
  if (c.blocks == 0) {
    const double fraction = o.worker.server.engine.gpu_memory_fraction;
    const double kv_bytes = fraction * hw.memory_gb * 1e9 * o.worker.tp - costs.weight_bytes;
    c.blocks = static_cast<int64_t>(kv_bytes / (costs.kv_bytes_per_token * block_size));
    if (c.blocks < 1) {
      return invalid_argument("{} does not fit {} x{} with --gpu-memory-fraction {}", o.model_shape,
                              o.hardware, o.worker.tp, fraction);
    }
  }
  return c;
}

StatusOr<CostChoice> choose_cost_model(const SimulateOptions& o, const ModelConfig& shape,
                                       const EngineConfig& engine_config,
                                       const std::vector<bench::ShapedRequest>& shaped) {
  CostChoice c{.blocks = o.num_blocks};
  if (!o.fit_steps.empty()) {
    STRATA_ASSIGN_OR_RETURN(auto samples, sim::load_step_csv(o.fit_steps));
    STRATA_ASSIGN_OR_RETURN(auto fit, sim::fit_cost_model(samples, /*drop_stalls=*/false));
    c.cost = fit.model;
    std::cerr << fmt::format("strata simulate: step_s = {:.3g} + {:.3g}·prefill + {:.3g}·decode_seqs + {:.3g}·context ({})\n",
                             c.cost.a, c.cost.b, c.cost.c, c.cost.d, c.cost.source);
    STRATA_RETURN_IF_ERROR(sim::save_cost_model(c.cost, o.cost_model_out));
    std::cerr << "strata simulate: wrote " << o.cost_model_out << "\n";
  } else if (!o.profile_model.empty()) {
    STRATA_ASSIGN_OR_RETURN(c.cost, profile_and_fit(o, engine_config, to_sim_requests(shaped, 1.0)));
  } else if (o.cost_model == "roofline") {
    STRATA_ASSIGN_OR_RETURN(c, roofline_choice(o, shape, engine_config.scheduler.block_size));
  } else {
    STRATA_ASSIGN_OR_RETURN(c.cost, sim::load_cost_model(o.cost_model));
  }
  if (c.blocks == 0) {
    STRATA_ASSIGN_OR_RETURN(const DType kv_dtype, simulated_kv_dtype(o));
    c.blocks = engine_kv_blocks(shape, ShardPlan::full(shape), engine_config, kv_dtype);
  }
  return c;
}

// One (time scale, policy) point: a Markdown row and a JSON object.
void report_point(double scale, const std::string& policy, size_t num_requests,
                  const sim::SimResult& result, std::string& md, nlohmann::json& points) {
  std::vector<double> ttft, e2e;
  int ok = 0;
  int64_t tokens = 0;
  for (const sim::SimRequestResult& r : result.requests) {
    if (!r.ok) continue;
    ++ok;
    tokens += r.output_tokens;
    ttft.push_back(r.ttft_s * 1e3);
    e2e.push_back(r.e2e_s * 1e3);
  }
  const bench::Percentiles t = bench::percentiles(ttft), e = bench::percentiles(e2e);
  const double secs = result.duration_s;
  const double tokens_per_s = secs > 0 ? tokens / secs : 0.0, requests_per_s = secs > 0 ? ok / secs : 0.0;
  const double hit_rate = result.prefix_cache_queries > 0
                              ? static_cast<double>(result.prefix_cache_hits) / static_cast<double>(result.prefix_cache_queries)
                              : 0.0;
  md += fmt::format("| {:g} | {} | {}/{} | {:.1f} | {:.2f} | {:.0f} / {:.0f} | {:.0f} / {:.0f} | {} | {:.0f}% / {:.0f}% | {:.0f}% | {:.1f}% |\n",
                    scale, policy, ok, num_requests, tokens_per_s, requests_per_s, t.p50, t.p99, e.p50,
                    e.p99, result.preemptions, 100 * result.kv_utilization_mean,
                    100 * result.kv_utilization_max, 100 * result.busy_fraction, 100 * hit_rate);
  points.push_back({{"time_scale", scale}, {"policy", policy}, {"num_requests", num_requests},
                    {"num_ok", ok}, {"duration_s", secs}, {"output_tokens", tokens},
                    {"output_tokens_per_s", tokens_per_s}, {"requests_per_s", requests_per_s},
                    {"ttft_ms", {{"p50", t.p50}, {"p90", t.p90}, {"p99", t.p99}, {"mean", t.mean}}},
                    {"e2e_ms", {{"p50", e.p50}, {"p90", e.p90}, {"p99", e.p99}, {"mean", e.mean}}},
                    {"preemptions", result.preemptions},
                    {"kv_utilization_mean", result.kv_utilization_mean},
                    {"kv_utilization_max", result.kv_utilization_max},
                    {"steps", result.steps}, {"busy_fraction", result.busy_fraction},
                    {"prefix_cache_queries", result.prefix_cache_queries},
                    {"prefix_cache_hits", result.prefix_cache_hits}});
}

int run_simulate(SimulateOptions& o) {
  if (Status st = config::check_ranges(o.replay); !st.ok()) return report_failure("simulate", st);
  if (Status st = config::check_ranges(o.worker); !st.ok()) return report_failure("simulate", st);
  if (Status st = config::check_ranges(o.scheduling); !st.ok()) return report_failure("simulate", st);
  if (o.replay.trace.empty()) {
    return report_failure("simulate", invalid_argument("--trace FILE (Azure CSV or Mooncake JSONL) is required"));
  }
  auto rows = load_trace(o.replay.trace);
  if (!rows.ok()) return report_failure("simulate", rows.status());
  const std::vector<bench::ShapedRequest> shaped = bench::shape_trace(*rows, o.replay.shaping);

  if (o.model_shape.empty()) o.model_shape = o.profile_model.empty() ? "builtin:llama-110m" : o.profile_model;
  auto shape = bench::load_model_shape(o.model_shape);
  if (!shape.ok()) return report_failure("simulate", shape.status());
  auto server_config = o.worker.server_config();
  if (!server_config.ok()) return report_failure("simulate", server_config.status());
  EngineConfig engine_config = server_config->engine;
  SchedulerConfig& worker = engine_config.scheduler;
  if (worker.max_model_len <= 0 || worker.max_model_len > shape->max_position_embeddings) {
    worker.max_model_len = shape->max_position_embeddings;
  }
  auto choice = choose_cost_model(o, *shape, engine_config, shaped);
  if (!choice.ok()) return report_failure("simulate", choice.status());
  const auto& [cost, blocks] = *choice;
  std::cerr << fmt::format("strata simulate: {} requests, {} group(s) of {} KV blocks x {} positions; cost: {}\n",
                           shaped.size(), o.groups, blocks, worker.block_size, cost.source);

  const sim::SimConfig config{.num_groups = o.groups, .blocks_per_group = blocks, .worker = worker, .cost = cost};
  std::string md =
      "| time scale | policy | ok/sent | out tok/s | req/s | TTFT p50 / p99 ms | E2E p50 / p99 ms | preemptions | KV util "
      "mean / max | busy | prefix hits |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  nlohmann::json json_points = nlohmann::json::array();
  for (double scale : o.replay.time_scale) {
    if (!(scale > 0)) return report_failure("simulate", out_of_range("--trace-time-scale must be > 0, got {}", scale));
    const std::vector<sim::SimRequest> requests = to_sim_requests(shaped, scale);
    for (const std::string& name : o.policies) {
      for (const std::string& placement_name : o.placements) {
        auto policy = sim::parse_sim_policy(name, o.scheduling);
        if (!policy.ok()) return report_failure("simulate", policy.status());
        auto placement = router::parse_placement(placement_name);
        if (!placement.ok()) return report_failure("simulate", placement.status());
        policy->router.placement.placement = *placement;
        auto result = sim::simulate(config, *policy, requests);
        if (!result.ok()) return report_failure("simulate", result.status());
        const std::string label = o.placements.size() > 1 ? name + " @" + placement_name : name;
        report_point(scale, label, requests.size(), *result, md, json_points);
      }
    }
  }
  std::cout << md;
  if (!o.output_md.empty()) std::ofstream(o.output_md) << md;
  if (!o.output_json.empty()) {
    const nlohmann::json out = {{"trace", o.replay.trace}, {"groups", o.groups}, {"blocks_per_group", blocks},
                                {"block_size", worker.block_size},
                                {"cost_model", {{"a", cost.a}, {"b", cost.b}, {"c", cost.c}, {"d", cost.d}, {"source", cost.source}}},
                                {"points", json_points}};
    std::ofstream(o.output_json) << out.dump(1) << "\n";
  }
  return 0;
}

}  // namespace

CommandRunner add_simulate_command(CLI::App& app) {
  auto o = std::make_shared<SimulateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "simulate", "Replay a trace through the router's scheduling policies and simulated worker groups");
  config::CliBinder replay_flags(*cmd);
  o->replay.visit_fields(replay_flags);
  cmd->add_option("--policy", o->policies,
                  "policies to compare: ADMISSION[+ORDER] with on-demand|reserve-max|predicted and fcfs|sjf")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--placement", o->placements,
                  "placements to compare: prefix (prefix-aware) and/or least-loaded, as strata serve's --placement")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--groups", o->groups, "data-parallel worker groups")->capture_default_str();
  cmd->add_option("--num-requests", o->replay.shaping.num_requests, "the first N trace rows (0 = all)")
      ->capture_default_str();
  cmd->add_option("--cost-model", o->cost_model, "cost model JSON (from --profile-model), or `roofline`")
      ->capture_default_str();
  cmd->add_option("--model-shape", o->model_shape,
                  "model shape for KV sizes and the roofline: preset (llama-3-8b, builtin:llama-110m) or config.json")
      ->capture_default_str();
  cmd->add_option("--hardware", o->hardware, "roofline: configs/hardware/NAME.yaml")->capture_default_str();
  cmd->add_option("--hardware-dir", o->hardware_dir, "roofline: where hardware YAML files are");
  cmd->add_option("--roofline-dtype", o->dtype, "roofline: weight, KV and compute dtype (bf16, fp16, fp8, fp32)")
      ->capture_default_str();
  cmd->add_option("--roofline-efficiency", o->roofline_efficiency, "roofline: fraction of bandwidth and peak reached")
      ->capture_default_str();
  cmd->add_option("--num-blocks", o->num_blocks, "KV blocks per group (0 = as the worker would size them)")
      ->capture_default_str();
  cmd->add_option("--profile-model", o->profile_model,
                  "profile this model on the real worker engine here, fit the cost model and use it")
      ->capture_default_str();
  cmd->add_option("--profile-concurrency", o->profile_concurrency, "profiling: concurrency levels")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--profile-requests", o->profile_requests, "profiling: requests per level")->capture_default_str();
  cmd->add_option("--cost-model-out", o->cost_model_out, "profiling or --fit-steps: write the fitted cost model here")
      ->capture_default_str();
  cmd->add_option("--fit-steps", o->fit_steps,
                  "fit the cost model to a serving worker's --step-log CSV (every step kept) and use it");
  cmd->add_option("--profile-steps-csv", o->profile_steps_csv, "profiling: write every measured step here");
  cmd->add_option("--output-json", o->output_json, "write every point as JSON here");
  cmd->add_option("--output-md", o->output_md, "write the Markdown table here too");
  // The policies come from --policy; the router scheduler's numbers, as in strata serve.
  config::CliBinder router_flags(*cmd, "Router scheduling (as in strata serve)");
  o->scheduling.visit_fields(router_flags);
  config::CliBinder worker_flags(*cmd, "Worker group (as in strata serve)");
  auto worker_binder = config::only(worker_flags, {"max_num_seqs", "max_num_batched_tokens", "block_size",
                                                   "kv_cache_mb", "kv_cache_dtype", "max_model_len", "dtype", "threads", "tp",
                                                   "gpu_memory_fraction", "enable_prefix_caching"});
  o->worker.visit_fields(worker_binder);
  return [o] { return run_simulate(*o); };
}

}  // namespace strata::cli
