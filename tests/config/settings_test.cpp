// Settings are defined once, on the component that uses them, and the process options
// embed those definitions: one default per setting, flags and YAML keys from the same
// list, a launcher's arguments that parse back to what it holds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "common/config_fields.h"
#include "router/router_config.h"
#include "tools/bench/trace_shaping.h"
#include "worker/engine/generator.h"
#include "worker/server/worker_options.h"

namespace strata {
namespace {

// Parses `args` (without the program name) into `config`'s flags.
template <typename Config>
void parse(Config& config, std::vector<std::string> args) {
  CLI::App app;
  config::CliBinder binder(app);
  config.visit_fields(binder);
  args.insert(args.begin(), "test");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
}

TEST(Settings, TheRouterAndTheWorkerDefaultToOneEndpoint) {
  EXPECT_EQ(router::RouterConfig{}.dispatcher.endpoint, WorkerOptions{}.server.router_endpoint);
  EXPECT_EQ(router::DispatcherConfig{}.endpoint, std::string(wire::kDefaultRouterEndpoint));
}

TEST(Settings, HeartbeatTimeoutIsWhatTheRouterRanWith) {
  EXPECT_EQ(router::DispatcherConfig{}.heartbeat_timeout_ms, 5000);
  router::DispatcherConfig too_short{.heartbeat_timeout_ms = 99};
  const Status st = too_short.validate();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("--heartbeat-timeout-ms"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("99"), std::string::npos) << st.message();
}

TEST(Settings, WorkerFlagsReachTheComponentsThatUseThem) {
  WorkerOptions o;
  parse(o, {"--block-size", "32", "--max-model-len", "100", "--heartbeat-ms", "50",
            "--device", "cpu", "--no-cuda-graphs", "--kv-cache-mb", "2"});
  const auto server = o.server_config();
  ASSERT_TRUE(server.ok());
  EXPECT_EQ(server->engine.scheduler.block_size, 32);
  EXPECT_EQ(server->engine.scheduler.max_model_len, 100);
  EXPECT_EQ(server->heartbeat_ms, 50);
  EXPECT_FALSE(server->engine.cuda_graphs);
  EXPECT_EQ(server->engine.kv_cache_bytes, 2 << 20);
}

TEST(Settings, WorkerArgumentsParseBackToTheSameOptions) {
  WorkerOptions o;
  o.server.engine.scheduler.block_size = 8;
  o.server.group_id = "g7";
  o.load.threads = 3;
  WorkerOptions back;
  parse(back, o.to_args());
  EXPECT_EQ(back.to_args(), o.to_args());
  EXPECT_EQ(back.server.engine.scheduler.block_size, 8);
}

TEST(Settings, YamlKeysAreTheFlagNames) {
  const std::string path = ::testing::TempDir() + "settings_test.yaml";
  std::ofstream(path) << "worker:\n  block_size: 64\n  max_num_seqs: 3\n  router: ipc:///tmp/x\n"
                      << "router:\n  heartbeat_timeout_ms: 1500\n  max_queue_requests: 7\n";
  WorkerOptions w;
  ASSERT_TRUE(config::load_yaml(path, "worker", w).ok());
  EXPECT_EQ(w.server.engine.scheduler.block_size, 64);
  EXPECT_EQ(w.server.engine.scheduler.max_num_seqs, 3);
  EXPECT_EQ(w.server.router_endpoint, "ipc:///tmp/x");
  router::RouterConfig r;
  ASSERT_TRUE(config::load_yaml(path, "router", r).ok());
  EXPECT_EQ(r.dispatcher.heartbeat_timeout_ms, 1500);
  EXPECT_EQ(r.scheduling.max_queue_requests, 7);
  std::remove(path.c_str());
}

TEST(Settings, OneRangePerSettingWhereverItIsChecked) {
  WorkerOptions o;
  o.server.engine.scheduler.block_size = 2048;
  const Status flag = config::check_ranges(o);
  const Status component = o.server.engine.scheduler.validate();
  ASSERT_FALSE(flag.ok());
  EXPECT_EQ(flag.message(), component.message());
  EXPECT_NE(flag.message().find("[1, 1024]"), std::string::npos) << flag.message();
}

TEST(Settings, ServeBindsRouterAndWorkerFlagsWithoutClashes) {
  router::RouterConfig r;
  WorkerOptions w;
  CLI::App app;
  config::CliBinder binder(app);
  auto router_flags = config::except(binder, {"model", "zmq_endpoint", "log_level"});
  auto worker_flags = config::except(binder, {"router", "transport_key_file"});
  EXPECT_NO_THROW(r.visit_fields(router_flags));
  EXPECT_NO_THROW(w.visit_fields(worker_flags));
  EXPECT_EQ(app.get_option_no_throw("--zmq-endpoint"), nullptr);
  EXPECT_NE(app.get_option_no_throw("--heartbeat-timeout-ms"), nullptr);
  EXPECT_NE(app.get_option_no_throw("--model"), nullptr);
  EXPECT_NE(app.get_option_no_throw("--transport-key-file"), nullptr);  // the router's, handed to the worker
}

TEST(Settings, GenerateTakesOnlyTheEngineSettingsItUses) {
  GeneratorConfig g;
  CLI::App app;
  config::CliBinder binder(app);
  g.visit_fields(binder);
  EXPECT_NE(app.get_option_no_throw("--block-size"), nullptr);
  EXPECT_NE(app.get_option_no_throw("--prefill-chunk"), nullptr);
  EXPECT_EQ(app.get_option_no_throw("--max-num-seqs"), nullptr);
  EXPECT_EQ(app.get_option_no_throw("--step-timeout-ms"), nullptr);
}

TEST(Settings, ListsTakeCommasOnTheCommandLine) {
  bench::TraceReplay t;
  parse(t, {"--trace-time-scale", "1,2.5,4", "--max-tokens-cap", "9"});
  EXPECT_EQ(t.time_scale, (std::vector<double>{1, 2.5, 4}));
  EXPECT_EQ(t.shaping.max_tokens_cap, 9);
  const std::vector<std::string> args = config::to_args(t);
  const auto it = std::find(args.begin(), args.end(), "--trace-time-scale");
  ASSERT_NE(it, args.end());
  EXPECT_EQ(*(it + 1), "1,2.5,4");
}

// A switch with a default of off, to check both defaults read right in the help.
struct Switches {
  bool verbose = false;
  template <typename V>
  void visit_fields(V& v) {
    v("verbose", verbose, "say more");
  }
};

TEST(Settings, SwitchHelpShowsTheRealDefault) {
  WorkerOptions w;  // cuda_graphs defaults to on
  Switches s;
  CLI::App app;
  config::CliBinder binder(app);
  w.visit_fields(binder);
  s.visit_fields(binder);
  const std::string help = app.help();
  EXPECT_NE(help.find("--cuda-graphs (default: on)"), std::string::npos) << help;
  EXPECT_NE(help.find("--verbose (default: off)"), std::string::npos) << help;
  EXPECT_NE(help.find("--no-cuda-graphs"), std::string::npos) << help;
  EXPECT_EQ(help.find("{false}"), std::string::npos) << help;
}

TEST(Settings, SwitchesSetBothWaysAndRefuseBoth) {
  Switches s;
  parse(s, {"--verbose"});
  EXPECT_TRUE(s.verbose);
  parse(s, {"--no-verbose"});
  EXPECT_FALSE(s.verbose);
  parse(s, {});
  EXPECT_FALSE(s.verbose);
  EXPECT_THROW(parse(s, {"--verbose", "--no-verbose"}), CLI::ExcludesError);
  WorkerOptions w;
  parse(w, {"--no-cuda-graphs"});
  EXPECT_FALSE(w.server.engine.cuda_graphs);
}

// Prefix caching is on by default, as in vLLM; --no-prefix-caching and
// --no-enable-prefix-caching both turn it off, and a launcher hands that on.
TEST(Settings, PrefixCachingIsOnByDefaultAndTurnsOffEitherWay) {
  WorkerOptions on;
  parse(on, {});
  EXPECT_TRUE(on.server.engine.scheduler.enable_prefix_caching);
  for (const char* flag : {"--no-prefix-caching", "--no-enable-prefix-caching"}) {
    WorkerOptions off;
    parse(off, {flag});
    EXPECT_FALSE(off.server.engine.scheduler.enable_prefix_caching) << flag;
    WorkerOptions back;
    parse(back, off.to_args());
    EXPECT_FALSE(back.server.engine.scheduler.enable_prefix_caching) << flag;
  }
  WorkerOptions both;
  EXPECT_THROW(parse(both, {"--enable-prefix-caching", "--no-prefix-caching"}), CLI::ExcludesError);
}

}  // namespace
}  // namespace strata
