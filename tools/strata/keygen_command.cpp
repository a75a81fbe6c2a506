// `strata keygen FILE`: a new transport key (common/transport_key.h) for a router and its
// worker groups, e.g. for a Kubernetes Secret mounted into both.
#include <iostream>
#include <memory>
#include <string>

#include "common/transport_key.h"
#include "tools/strata/commands.h"

namespace strata::cli {

CommandRunner add_keygen_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "keygen", "Write a new transport key file (mode 0600) for --transport-key-file of the router and workers");
  cmd->add_option("file", *path, "the key file to create (it must not exist)")->required();
  return [path] {
    if (const Status st = write_transport_key(*path, generate_transport_key()); !st.ok()) {
      return report_failure("keygen", st);
    }
    std::cout << "wrote " << *path << ": give it to strata-router and to every strata-worker "
              << "(--transport-key-file); keep it secret\n";
    return 0;
  };
}

}  // namespace strata::cli
