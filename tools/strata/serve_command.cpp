// `strata serve`: a router and one worker group on this machine, started together and
// stopped together (Ctrl-C, SIGTERM, or either process exiting). The two processes talk
// over a ZeroMQ ipc:// socket private to this launch, with a CURVE key of its own. What can be checked is checked before
// either starts; "ready" is said only once the router's /ready answers 200.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <httplib.h>

#include "common/listen_address.h"
#include "common/model_path.h"
#include "common/transport_key.h"
#include "router/router_config.h"
#include "tools/strata/commands.h"
#include "worker/model/builtin_models.h"
#include "worker/server/worker_options.h"

namespace strata::cli {
namespace {

struct ServeOptions {
  router::RouterConfig router;
  WorkerOptions worker;
};

// The directory of the running `strata` binary: strata-router and strata-worker sit beside it.
std::filesystem::path binary_dir() {
  return std::filesystem::read_symlink("/proc/self/exe").parent_path();
}

pid_t spawn(const std::filesystem::path& program, const std::vector<std::string>& args) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the launcher
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  std::vector<char*> argv;
  std::string name = program.string();
  argv.push_back(name.data());
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(program.c_str(), argv.data());
  std::cerr << "strata serve: cannot start " << program << ": " << std::strerror(errno) << "\n";
  _exit(127);
}

// What can be checked before anything starts: the built binaries, the options' ranges, the
// model and its tokenizer, and the address to listen on. False after saying what is wrong,
// so a bad flag never gets as far as a started process (or a banner).
bool ready_to_serve(const std::filesystem::path& dir, const ServeOptions& o) {
  for (const char* name : {"strata-router", "strata-worker"}) {
    if (!std::filesystem::exists(dir / name)) {
      std::cerr << "strata serve: " << (dir / name) << " is missing; build every target (scripts/build.sh)\n";
      return false;
    }
  }
  const Status checks[] = {config::check_ranges(o.router), config::check_ranges(o.worker),
                           check_builtin_model_path(o.worker.load.model),
                           resolve_tokenizer_path(o.worker.load.model, o.router.tokenizer).status(),
                           router::HttpAccess::create(o.router.access, o.router.host).status(),
                           o.router.dispatcher.transport_key_file.empty()
                               ? ok_status()
                               : load_transport_key(o.router.dispatcher.transport_key_file).status(),
                           check_listen_address(o.router.host, o.router.port)};
  for (const Status& st : checks) {
    if (!st.ok()) {
      std::cerr << "strata serve: " << st.message() << "\n";
      return false;
    }
  }
  return true;
}

constexpr const char* kUnshare = "/usr/bin/unshare";  // util-linux, in every Debian

struct Command {
  std::filesystem::path program;
  std::vector<std::string> args;
};

// mpirun's out-of-band listener binds every interface whatever oob_tcp_if_include says (Open
// MPI 4.1 has no setting for its address). So an mpirun group runs in a network namespace of
// its own that holds only loopback, made by an unprivileged user namespace (`unshare --user
// --map-root-user --net`): nothing of the group is reachable from another machine, and the
// router socket, ipc (a file), is not cut off by it. True when this kernel and container let
// this user make one (some container runtimes refuse user namespaces).
bool private_network_namespace_available() {
  const pid_t pid = fork();
  if (pid == 0) {
    const int null_fd = ::open("/dev/null", O_WRONLY);
    dup2(null_fd, STDOUT_FILENO);
    dup2(null_fd, STDERR_FILENO);
    execl(kUnshare, kUnshare, "--user", "--map-root-user", "--net", "/bin/sh", "-c", "ip link set lo up", nullptr);
    _exit(127);
  }
  int status = 0;
  return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Whether the group runs in a private network namespace: an mpirun group, where the system
// allows one (else it says what that leaves exposed).
bool group_gets_private_network(const ServeOptions& o) {
  if (o.worker.tp * o.worker.pp == 1) return false;
  if (private_network_namespace_available()) return true;
  std::cerr << "strata serve: this system refuses user namespaces (" << kUnshare << " --user --net), so the "
            << "group's mpirun runs in the machine's network; its out-of-band listener binds every interface\n";
  return false;
}

// `c` run in a private network namespace (above), its loopback up.
Command in_private_network(Command c) {
  std::vector<std::string> args = {"--user", "--map-root-user", "--net", "--", "/bin/sh", "-c",
                                   "ip link set lo up && exec \"$@\"", "strata-group", c.program.string()};
  args.insert(args.end(), c.args.begin(), c.args.end());
  return Command{kUnshare, std::move(args)};
}

// The worker group's command: strata-worker, or one mpirun job of tp × pp ranks (rank 0
// talks to the router), in a private network namespace when `private_dir` is given (its
// session directory goes there: /tmp's may belong to another user's run).
Command worker_command(const std::filesystem::path& dir, ServeOptions& o, const std::string& private_dir) {
  Command c{dir / "strata-worker", o.worker.to_args()};
  const int ranks = o.worker.tp * o.worker.pp;
  if (ranks == 1) return c;
  // Ranks share this machine's cores: each gets cores / ranks threads, pinned to its own
  // cores when they fit (unpinned ranks migrate and stall each other's collectives).
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (o.worker.load.threads == 0) {
    o.worker.load.threads = std::max(1, cores / ranks);
    c.args = o.worker.to_args();
  }
  std::vector<std::string> mpi_args = {"-np", std::to_string(ranks)};
  if (ranks * o.worker.load.threads <= cores) {
    mpi_args.insert(mpi_args.end(), {"--map-by", "slot:PE=" + std::to_string(o.worker.load.threads), "--bind-to", "core"});
  } else {
    mpi_args.insert(mpi_args.end(), {"--bind-to", "none", "--oversubscribe"});
  }
  // Every rank runs on this machine, so nothing of theirs need be reachable from elsewhere:
  // shared memory between ranks (no TCP transport listening on every interface), mpirun's
  // own channel and NCCL's bootstrap on loopback.
  mpi_args.insert(mpi_args.end(), {"--mca", "btl", "self,vader", "--mca", "oob_tcp_if_include", "lo",
                                   "-x", "NCCL_SOCKET_IFNAME=lo"});
  // Containers often run as root, and in the private namespace everyone is.
  if (geteuid() == 0 || !private_dir.empty()) mpi_args.push_back("--allow-run-as-root");
  if (!private_dir.empty()) mpi_args.insert(mpi_args.end(), {"--mca", "orte_tmpdir_base", private_dir});
  mpi_args.push_back(c.program.string());
  c.args.insert(c.args.begin(), mpi_args.begin(), mpi_args.end());
  c.program = "/usr/bin/mpirun";
  if (const char* env = std::getenv("STRATA_MPIRUN"); env && *env) c.program = env;
  return private_dir.empty() ? c : in_private_network(std::move(c));
}

// The address to reach a server listening on `host` from this machine.
std::string local_address(const std::string& host) {
  if (host == "0.0.0.0" || host.empty()) return "127.0.0.1";
  if (host == "::") return "::1";
  return host;
}

// Says "ready" once the router's /ready answers 200: the worker group has connected and
// loaded the model, so requests will be served. Until then only "starting" has been said.
class ReadyAnnouncer {
 public:
  ReadyAnnouncer(const ServeOptions& o, std::string probe_key)
      : thread_([this, host = o.router.host, port = o.router.port, model = o.worker.load.model,
                 key = std::move(probe_key)](std::stop_token stop) { poll(stop, host, port, model, key); }) {}
  bool ready() const { return ready_.load(); }

 private:
  void poll(std::stop_token stop, const std::string& host, int port, const std::string& model,
            const std::string& probe_key) {
    const auto start = std::chrono::steady_clock::now();
    httplib::Client client(local_address(host), port);
    if (!probe_key.empty()) client.set_bearer_token_auth(probe_key.c_str());
    client.set_connection_timeout(std::chrono::seconds(1));
    client.set_read_timeout(std::chrono::seconds(2));
    std::mutex mu;
    std::condition_variable_any wake;
    while (!stop.stop_requested()) {
      if (auto res = client.Get("/ready"); res && res->status == 200) {
        ready_.store(true);
        std::cerr << fmt::format("strata serve: ready on http://{}:{}, serving {} (started in {:.1f} s); "
                                 "Ctrl-C stops it\n",
                                 host, port, model,
                                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        return;
      }
      std::unique_lock lock(mu);
      wake.wait_for(lock, stop, std::chrono::milliseconds(100), [] { return false; });
    }
  }

  std::atomic<bool> ready_{false};
  std::jthread thread_;  // last: it starts polling once the flag exists
};

// Runs the two children until the server stops. Ctrl-C / SIGTERM drains: the router alone
// is signalled, finishes what is in flight (--drain-timeout-s) and exits, and only then is
// the worker group stopped; a second signal stops both at once. A worker group that dies
// while serving is restarted (1 s, 2 s, 4 s … 30 s apart; back to 1 s after a minute up)
// and the router keeps serving meanwhile (it fails the dead group's requests at once). A
// router that dies, or a worker group that dies before the server was ever ready, stops
// everything; run() then returns that child's code (1 when it exited 0 unasked).
class Supervisor {
 public:
  using Clock = std::chrono::steady_clock;

  Supervisor(sigset_t& signals, pid_t router, std::function<pid_t()> start_worker, const ReadyAnnouncer& announcer)
      : signals_(signals), router_(router), start_worker_(std::move(start_worker)), announcer_(announcer) {
    worker_ = start_worker_();
    worker_started_ = Clock::now();
  }
  pid_t worker_pid() const { return worker_; }

  int run() {
    while (router_ > 0 || worker_ > 0 || restart_at_) {
      const int sig = next_signal();
      if (sig == 0) {
        restart_at_.reset();
        worker_ = start_worker_();
        worker_started_ = Clock::now();
        std::cerr << "strata serve: restarted the worker group (pid " << worker_ << ")\n";
      } else if (sig != SIGCHLD) {
        stop_on_signal();
      } else {
        reap();
      }
    }
    return exit_code_;
  }

 private:
  // The next signal; 0 when a pending restart is due first.
  int next_signal() {
    if (!restart_at_) {
      int sig = 0;
      sigwait(&signals_, &sig);
      return sig;
    }
    const auto left = std::max(Clock::duration::zero(), *restart_at_ - Clock::now());
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(left);
    const timespec wait{.tv_sec = s.count(),
                        .tv_nsec = std::chrono::duration_cast<std::chrono::nanoseconds>(left - s).count()};
    const int sig = sigtimedwait(&signals_, nullptr, &wait);
    return sig > 0 ? sig : 0;
  }

  void stop_on_signal() {
    stopping_ = true;
    restart_at_.reset();
    if (router_ > 0) kill(router_, SIGTERM);
    if (++signals_seen_ > 1 && worker_ > 0) kill(worker_, SIGTERM);
  }

  void reap() {
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid != router_ && pid != worker_) continue;
      const bool was_router = pid == router_;
      (was_router ? router_ : worker_) = -1;
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      if (stopping_) {
        if (was_router && worker_ > 0) kill(worker_, SIGTERM);  // drained
      } else if (!was_router && announcer_.ready()) {
        schedule_restart(code);
      } else {
        fail(was_router, code);
      }
    }
  }

  void schedule_restart(int code) {
    if (Clock::now() - worker_started_ > std::chrono::minutes(1)) backoff_ = std::chrono::seconds(1);
    std::cerr << "strata serve: the worker group exited (" << code << "); restarting it in "
              << backoff_.count() << " s (the router keeps serving)\n";
    restart_at_ = Clock::now() + backoff_;
    backoff_ = std::min(backoff_ * 2, std::chrono::seconds(30));
  }

  void fail(bool was_router, int code) {
    const char* who = was_router ? "the router" : "the worker group";
    if (announcer_.ready()) {
      std::cerr << "strata serve: " << who << " exited (" << code << "); stopping the other\n";
    } else {
      std::cerr << "strata serve: startup failed: " << who << " exited (" << code
                << ") before the server was ready (its message is above)\n";
    }
    exit_code_ = code == 0 ? 1 : code;
    stopping_ = true;
    if (!was_router && router_ > 0) {
      kill(router_, SIGTERM);  // with nothing to serve, no drain: a second signal
      kill(router_, SIGINT);   // (of another kind, so the two are not merged)
    } else if (worker_ > 0) {
      kill(worker_, SIGTERM);
    }
  }

  sigset_t& signals_;
  pid_t router_;
  pid_t worker_ = -1;
  const std::function<pid_t()> start_worker_;
  const ReadyAnnouncer& announcer_;
  Clock::time_point worker_started_;
  std::optional<Clock::time_point> restart_at_;
  std::chrono::seconds backoff_{1};
  bool stopping_ = false;
  int signals_seen_ = 0;
  int exit_code_ = 0;
};

int run_serve(ServeOptions& o) {
  const auto dir = binary_dir();
  if (!ready_to_serve(dir, o)) return 2;
  // The socket lives in a directory only this user can enter, whatever the umask: no other
  // local user can connect to it and pose as the worker group.
  std::string private_dir = (std::filesystem::temp_directory_path() / "strata-XXXXXX").string();
  if (mkdtemp(private_dir.data()) == nullptr) {
    std::cerr << "strata serve: cannot create a private directory in " << std::filesystem::temp_directory_path()
              << ": " << std::strerror(errno) << "; set TMPDIR to a writable directory\n";
    return 2;
  }
  const std::string endpoint = "ipc://" + private_dir + "/router.sock";
  o.router.dispatcher.endpoint = endpoint;
  o.router.model = o.worker.load.model;
  o.worker.server.router_endpoint = endpoint;
  // The two authenticate each other with a key made for this launch unless one is given.
  std::string& key_file = o.router.dispatcher.transport_key_file;
  if (key_file.empty()) {
    key_file = private_dir + "/transport.key";
    if (const Status st = write_transport_key(key_file, generate_transport_key()); !st.ok()) {
      std::cerr << "strata serve: " << st.message() << "\n";
      std::filesystem::remove_all(private_dir);
      return 2;
    }
  }
  o.worker.server.transport_key_file = key_file;

  // Probed before SIGCHLD is blocked: the Supervisor is not to see the probe's exit.
  const bool private_network = group_gets_private_network(o);

  // Blocked before any thread starts, so that every thread inherits the mask and only
  // the Supervisor takes these signals.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGCHLD);
  sigprocmask(SIG_BLOCK, &signals, nullptr);

  // API keys given as flags reach the router through its environment, not its argv, which
  // every local user can read in the process list.
  const std::string probe_key = router::HttpAccess::create(o.router.access, o.router.host)->probe_key();
  std::vector<std::string> keys = std::exchange(o.router.access.api_keys, {});
  if (const char* env = std::getenv("STRATA_API_KEY"); env && *env) keys.emplace_back(env);
  if (!keys.empty()) setenv("STRATA_API_KEY", fmt::format("{}", fmt::join(keys, ",")).c_str(), 1);
  const pid_t router_pid = spawn(dir / "strata-router", config::to_args(o.router));
  unsetenv("STRATA_API_KEY");  // the worker group has no use for it
  const Command worker = worker_command(dir, o, private_network ? private_dir : "");
  int exit_code = 0;
  {
    ReadyAnnouncer announcer(o, probe_key);
    Supervisor supervisor(signals, router_pid, [&worker] { return spawn(worker.program, worker.args); },
                          announcer);
    std::cerr << "strata serve: starting the router (pid " << router_pid << ") and a worker group (pid "
              << supervisor.worker_pid() << ") for " << o.worker.load.model << "\n";
    exit_code = supervisor.run();
  }
  std::error_code ignored;
  std::filesystem::remove_all(private_dir, ignored);
  return exit_code;
}

}  // namespace

CommandRunner add_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "Start the HTTP router and one worker group; Ctrl-C stops both");
  // Router and worker settings come from their one definition each. The worker's model is
  // the router's too, the endpoint between them is private to this launch (run_serve), so is
  // the transport key unless --transport-key-file names one (both get it), and --log-level
  // is the worker's (the router logs at its default, info).
  config::CliBinder router_flags(*cmd, "Router");
  auto router_visitor = config::except(router_flags, {"model", "zmq_endpoint", "log_level"});
  o->router.visit_fields(router_visitor);
  config::CliBinder worker_flags(*cmd, "Worker group");
  auto worker_visitor = config::except(worker_flags, {"router", "transport_key_file"});
  o->worker.visit_fields(worker_visitor);
  return [o] { return run_serve(*o); };
}

}  // namespace strata::cli
