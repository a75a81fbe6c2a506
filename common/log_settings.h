// LogSettings: the log level of a strata process (--log-level, YAML `log_level:`), one
// definition for the router and the worker.
#pragma once

#include <string>

namespace strata {

struct LogSettings {
  std::string log_level = "info";

  template <typename V>
  void visit_fields(V& v) {
    v("log_level", log_level, "trace, debug, info, warn or error");
  }
};

}  // namespace strata
