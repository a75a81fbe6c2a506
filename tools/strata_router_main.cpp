// strata-router: the HTTP front of strata (OpenAI API, no weights). Worker groups connect
// to its ZeroMQ endpoint. SIGINT/SIGTERM drain it (RouterServer::drain); a second signal stops it.
#include <malloc.h>

#include <atomic>
#include <csignal>
#include <thread>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "router/server.h"

int main(int argc, char** argv) {
  // Request bodies come and go in megabytes. glibc raises its mmap threshold after each such
  // block is freed and then serves the next ones from per-thread heaps that keep their
  // pages, so RSS would ratchet up with every burst of large requests; a fixed threshold
  // keeps large blocks in mmap, given back to the kernel when freed.
  mallopt(M_MMAP_THRESHOLD, 256 << 10);
  spdlog::set_default_logger(spdlog::stderr_color_mt("strata-router"));
  strata::router::RouterConfig config;
  CLI::App app{"strata-router: OpenAI-compatible HTTP server in front of strata worker groups"};
  std::string config_file;
  app.add_option("--config", config_file, "YAML file whose `router:` section sets these options");
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--config") {
      if (auto st = strata::config::load_yaml(argv[i + 1], "router", config); !st.ok()) {
        spdlog::error("{}", st.message());
        return 2;
      }
    }
  }
  strata::config::CliBinder binder(app);
  config.visit_fields(binder);
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(config.log.log_level));
  if (auto st = strata::config::check_ranges(config); !st.ok()) {
    spdlog::error("{}", st.message());
    return 2;
  }

  // Signals are taken by one thread with sigwait, so stop() never runs in a handler.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  strata::router::RouterServer server(config);
  if (auto st = server.start(); !st.ok()) {
    spdlog::error("{}", st.message());
    return 2;
  }
  // The first signal drains (what Kubernetes' SIGTERM asks for); a second one stops at once.
  std::atomic<bool> returned{false};
  std::thread drainer;
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (returned.load()) return;
    spdlog::info("signal {}: draining for up to {} s (a second signal stops at once)", sig,
                 config.drain_timeout_s);
    drainer = std::thread([&] { server.drain(); });
    sigwait(&signals, &sig);
    server.stop();
  });
  server.run();
  // run() also returns when the server stops for another reason; wake the waiter, twice
  // with two kinds of signal (pending signals of one kind merge).
  returned.store(true);
  kill(getpid(), SIGTERM);
  kill(getpid(), SIGINT);
  waiter.join();
  if (drainer.joinable()) drainer.join();
  return 0;
}
