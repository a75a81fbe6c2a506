// RouterConfig: the settings of the router process (YAML key, CLI flag, default, range and
// help all come from visit_fields). Those of the dispatcher and of the router scheduler are
// defined on their own config structs, which this one embeds.
#pragma once

#include <cstdint>
#include <string>

#include "common/config_fields.h"
#include "common/log_settings.h"
#include "router/dispatcher.h"
#include "router/http_access.h"
#include "router/scheduling/router_scheduler.h"

namespace strata::router {

struct RouterConfig {
  std::string host = "127.0.0.1";
  int port = 8000;
  int probe_port = 0;                   // 0: the probes are on `port` only
  std::string model = "builtin:tiny";   // what the workers serve; the router reads only its tokenizer
  std::string tokenizer;                // default: found next to the model
  std::string served_model_name;        // default: the model's name as the workers report it
  std::string chat_template;            // llama-2 | llama-3 | chatml | mistral | plain | "" (detect)
  int64_t max_body_bytes = 4 << 20;
  int64_t max_body_bytes_in_flight = 32 << 20;  // router/body_budget.h
  int http_threads = 16;
  int tokenizer_threads = 2;
  int detokenizer_threads = 2;
  int read_timeout_s = 10;              // a whole request (head and body), from its first byte
  int keep_alive_timeout_s = 30;        // an idle connection between requests
  int write_timeout_s = 60;             // each write of an answer (a client that stops reading)
  int max_connections = 8192;           // open connections on --port (503 beyond)
  int max_connections_per_client = 2048;  // of one peer address (429 beyond)
  int drain_timeout_s = 30;             // SIGTERM: how long requests in flight may still run
  AccessConfig access;                  // API keys, Host/Origin checks, header limits
  DispatcherConfig dispatcher;          // the worker-facing socket and heartbeat timeout
  // Router scheduling (router/scheduling/). With the defaults (on-demand, fcfs) requests go
  // straight to a worker group; any other choice queues them in the router's scheduler,
  // whose limits and timeouts (kept in `scheduling`) apply to both paths.
  std::string admission_policy = "on-demand";  // on-demand | reserve-max | predicted
  std::string order = "fcfs";                  // fcfs | sjf
  std::string placement = "prefix";            // prefix | least-loaded
  RouterSchedulerConfig scheduling;            // the numbers; the policies come from the names
  std::string predictor_snapshot;              // file keeping the length predictor's state
  LogSettings log;

  template <typename V>
  void visit_fields(V& v) {
    using config::Range;
    v("host", host, "address the HTTP server listens on");
    v("port", port, "HTTP port", Range{1, 65535});
    v("probe_port", probe_port, "a second port for /health, /ready and /metrics alone, with threads of its own, so probes answer whatever holds --port's threads (0: none)", Range{0, 65535});
    v("model", model, "model the worker groups serve (llama2.c .bin, HF directory, builtin:NAME)");
    v("tokenizer", tokenizer, "tokenizer.bin / tokenizer.json (default: found next to the model)");
    v("served_model_name", served_model_name, "model name in the API (default: the model's name)");
    v("chat_template", chat_template, "chat template: llama-2, llama-3, chatml, mistral, plain (default: detect)");
    v("max_body_bytes", max_body_bytes, "largest request body accepted (413 beyond)", Range{1024, 1e9});
    v("max_body_bytes_in_flight", max_body_bytes_in_flight, "request-body bytes read, parsed and tokenized at once; more waits up to --read-timeout-s, then 503 (a body over this is read alone)", Range{1024, 1e12});
    access.visit_fields(v);
    dispatcher.visit_fields(v);
    v("http_threads", http_threads, "threads that parse, tokenize and submit POST requests once they have arrived whole (connections and streams need none)", Range{1, 1024});
    v("max_connections", max_connections, "open connections --port holds at once; more are answered 503 and closed", Range{16, 1000000});
    v("max_connections_per_client", max_connections_per_client, "open connections one client address may hold; more are answered 429 and closed", Range{1, 1000000});
    v("tokenizer_threads", tokenizer_threads, "tokenizer pool threads", Range{1, 256});
    v("detokenizer_threads", detokenizer_threads, "detokenizer pool threads", Range{1, 256});
    v("read_timeout_s", read_timeout_s, "seconds a client may take to send a whole request, head and body, from its first byte (408 beyond)", Range{1, 3600});
    v("keep_alive_timeout_s", keep_alive_timeout_s, "seconds an idle connection is kept open between requests", Range{1, 3600});
    v("write_timeout_s", write_timeout_s, "seconds one write of an answer may wait for a client that stops reading", Range{1, 3600});
    v("drain_timeout_s", drain_timeout_s, "on SIGTERM, seconds the requests in flight may still take before they end with an error (keep it under Kubernetes' terminationGracePeriodSeconds)", Range{0, 3600});
    v("admission_policy", admission_policy, "when a group takes another request: on-demand (free blocks for the prompt, like vLLM), reserve-max (prompt + max_tokens reserved, like TGI), predicted (predicted peak KV use fits)");
    v("order", order, "queue order: fcfs, or sjf (shortest predicted output first, with aging)");
    v("placement", placement, "which worker group takes a request: prefix (the likely cached part of its prompt weighed against each group's predicted queued tokens, within --placement-balance-slack of the least loaded), or least-loaded");
    scheduling.visit_fields(v);
    log.visit_fields(v);
    v("predictor_snapshot", predictor_snapshot, "file where the output-length predictor keeps what it learned across restarts (\"\": memory only)");
  }
};

}  // namespace strata::router
