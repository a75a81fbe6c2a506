// RouterConfig: every setting of the router process, defined once (YAML key, CLI flag,
// default, range and help all come from visit_fields).
#pragma once

#include <cstdint>
#include <string>

#include "common/config_fields.h"

namespace strata::router {

struct RouterConfig {
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string zmq_endpoint = "tcp://127.0.0.1:5557";
  std::string model = "builtin:tiny";   // what the workers serve; the router reads only its tokenizer
  std::string tokenizer;                // default: found next to the model
  std::string served_model_name;        // default: the model's name as the workers report it
  std::string chat_template;            // llama-2 | llama-3 | chatml | mistral | plain | "" (detect)
  int64_t max_body_bytes = 4 << 20;
  int max_queue_requests = 1024;        // accepted, unfinished requests (each choice) before 429
  int heartbeat_timeout_ms = 5000;
  int http_threads = 64;
  int tokenizer_threads = 2;
  int detokenizer_threads = 2;
  int read_timeout_s = 10;              // slow clients are cut off after this
  int request_timeout_s = 600;          // a request still running after this is aborted
  // Router scheduling (router/scheduling/), which every request goes through. With the
  // defaults (on-demand, fcfs) a request is sent on as soon as a group has room for its prompt.
  std::string admission_policy = "on-demand";  // on-demand | reserve-max | predicted
  std::string order = "fcfs";                  // fcfs | sjf
  double admission_quantile = 0.9;             // starting quantile of `predicted`
  int64_t kv_headroom_blocks = 0;              // KV blocks per group kept spare
  int64_t max_queue_tokens = int64_t{1} << 22; // waiting prompt tokens before 429
  double max_wait_s = 30;                      // aging bound of sjf
  double queue_deadline_s = 0;                 // 429 when the predicted wait exceeds it; 0: off
  std::string predictor_snapshot;              // file keeping the length predictor's state

  template <typename V>
  void visit_fields(V& v) {
    using config::Range;
    v("host", host, "address the HTTP server listens on");
    v("port", port, "HTTP port", Range{1, 65535});
    v("zmq_endpoint", zmq_endpoint, "ZeroMQ endpoint the router binds; worker groups connect to it");
    v("model", model, "model the worker groups serve (llama2.c .bin, HF directory, builtin:NAME)");
    v("tokenizer", tokenizer, "tokenizer.bin / tokenizer.json (default: found next to the model)");
    v("served_model_name", served_model_name, "model name in the API (default: the model's name)");
    v("chat_template", chat_template, "chat template: llama-2, llama-3, chatml, mistral, plain (default: detect)");
    v("max_body_bytes", max_body_bytes, "largest request body accepted (413 beyond)", Range{1024, 1e9});
    v("max_queue_requests", max_queue_requests, "unfinished requests (each of n choices counts) accepted before answering 429", Range{1, 1e6});
    v("heartbeat_timeout_ms", heartbeat_timeout_ms, "a worker group silent this long is marked dead", Range{100, 600000});
    v("http_threads", http_threads, "HTTP connection threads (one per open stream)", Range{2, 4096});
    v("tokenizer_threads", tokenizer_threads, "tokenizer pool threads", Range{1, 256});
    v("detokenizer_threads", detokenizer_threads, "detokenizer pool threads", Range{1, 256});
    v("read_timeout_s", read_timeout_s, "seconds a client may take to send its request", Range{1, 3600});
    v("request_timeout_s", request_timeout_s, "seconds before a running request is aborted", Range{1, 86400});
    v("admission_policy", admission_policy, "when a group takes another request: on-demand (free blocks for the prompt, like vLLM), reserve-max (prompt + max_tokens reserved, like TGI), predicted (predicted peak KV use fits)");
    v("order", order, "queue order: fcfs, or sjf (shortest predicted output first, with aging)");
    v("admission_quantile", admission_quantile, "starting quantile of predicted output length used by `predicted` (adapts toward 1% preemptions)", Range{0.5, 0.999});
    v("kv_headroom_blocks", kv_headroom_blocks, "KV blocks per worker group that admission keeps spare", Range{0, 1e9});
    v("max_queue_tokens", max_queue_tokens, "waiting prompt tokens accepted before answering 429", Range{1, 1e12});
    v("max_wait_s", max_wait_s, "with --order sjf, a request waiting this long goes ahead of younger ones", Range{0, 86400});
    v("queue_deadline_s", queue_deadline_s, "answer 429 at once when a request's predicted queueing delay exceeds this (0: never)", Range{0, 86400});
    v("predictor_snapshot", predictor_snapshot, "file where the output-length predictor keeps what it learned across restarts (\"\": memory only)");
  }
};

}  // namespace strata::router
