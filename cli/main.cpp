// kubelet-policy-controller: one binary, several jobs (see `--help` and cli/main_command.h).
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "base/clock.h"
#include "cli/main_command.h"

int main(int argc, char** argv) {
  const kpc::RealClock clock;
  return kpc::cli::RunMain(std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr,
                           clock, isatty(STDOUT_FILENO) == 1);
}
