#include "cli/main_command.h"

#include <CLI/CLI.hpp>

#include "agent/agent_command.h"
#include "cli/check_command.h"
#include "cli/command_line.h"
#include "cli/run_command.h"
#include "cli/webhook_command.h"

namespace kpc::cli {
namespace {

constexpr std::size_t kHelpColumn = 12;

constexpr const char* kUsage =
    R"(kubelet-policy-controller keeps every node's kubelet configuration compliant
with KubeletPolicy objects.

Usage:
  kubelet-policy-controller <command> [flags]
)";

constexpr const char* kFooter =
    "Run 'kubelet-policy-controller <command> --help' for a command's flags.";

}  // namespace

int RunMain(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
            const Clock& clock, bool stdout_is_terminal) {
  CLI::App app;
  ConfigureApp(app, kUsage, kHelpColumn);
  app.footer(kFooter);
  bool version_flag = false;
  app.add_flag("--version", version_flag, "print build information")->group("");
  auto command = [&app](const std::string& name, const std::string& description) {
    return app.add_subcommand(name, description)->group("Commands");
  };
  const CLI::App* run = command("run", "run the operator against a cluster");
  const CLI::App* webhook =
      command("webhook", "serve the admission webhooks for KubeletPolicy (its own process)");
  const CLI::App* check =
      command("check", "evaluate policy files against kubelet configurations (offline)");
  const CLI::App* agent = command(
      "agent", "the node agent: audit kubelet files, remediate them (runs in Jobs on a node)");
  const CLI::App* version = command("version", "print build information");
  const CLI::App* help = command("help", "print this help")->group("");

  // Rendered before parsing: afterwards CLI11 would render the chosen command's help.
  const std::string usage = app.help();
  if (args.empty()) {
    out << usage;
    return 2;
  }
  // CLI11 reads only the first word: the rest belongs to the command, verbatim (the agent's
  // --restart-command takes every word after it, `--` included).
  auto first = ParseCommandLine(app, {args.front()});
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (first.ok() && first->has_value()) {  // -h, --help
    out << **first;
    return 0;
  }
  if (first.ok()) {
    if (version_flag || version->parsed()) {
      out << "kubelet-policy-controller " << KPC_VERSION << " (commit " << KPC_GIT_COMMIT << ")\n";
      return 0;
    }
    if (help->parsed()) {
      out << usage;
      return 0;
    }
    if (run->parsed()) return RunOperator(rest, out, err);
    if (webhook->parsed()) return RunWebhook(rest, out, err);
    if (check->parsed()) return RunCheck(rest, out, err, clock.UnixSeconds(), stdout_is_terminal);
    if (agent->parsed()) return agent::RunAgent(rest, out, err);
  }
  err << "error: unknown command \"" << args.front() << "\"\n\n" << usage;
  return 2;
}

}  // namespace kpc::cli
