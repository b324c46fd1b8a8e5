#pragma once
// What `agent remediate` changes on one node, decided before anything is written.
// PlanAgentRemediation takes what the command line asks for, what detection found, and the
// contents and metadata of the files involved (read beforehand), and returns the ordered actions
// that carry it out plus the outcomes that need no action: changes already in place, Blocked,
// errors. Rules (README.md, "What remediate does"):
//  1. A field whose flag is on the running kubelet's command line with another value, in no
//     flags file, is Blocked (FlagOverride); the plan is then only that.
//  2. Every occurrence of the field's flag in a flags file is rewritten; a flag that cannot be
//     rewritten safely makes the plan Blocked (FlagOverride) with no actions.
//  3. The config file gets the value too, and so does every --config-dir drop-in that sets the
//     field. A missing config file is an error unless the request may create it.
//  4. Modes are set exactly as asked; owners as asked, an empty side kept.
//  5. Any error (unreadable or malformed file, unknown user, missing file to chmod) or a flag
//     that cannot be rewritten leaves a plan without actions, every change marked unchanged.
//  6. The kubelet restarts only when a file is to be written, unless no_restart; the default
//     restart command is preceded by systemd's daemon-reload when a unit or drop-in is among
//     the writes. A file that does not exist is written only when it is the config file to be
//     created.
// Pure (no I/O); thread-safe.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "agent/detect.h"
#include "agent/result.h"
#include "base/status.h"
#include "policy/catalog.h"
#include "policy/evaluate.h"
#include "policy/field_path.h"

namespace kpc::agent {

// --set FIELD=VALUE, typed by the field catalog.
struct SetOp {
  std::string text;  // as given
  policy::FieldPath path;
  policy::FieldMatch match;
  nlohmann::json value;
};

// --file-mode PATH=MODE.
struct ModeOp {
  std::string path;
  uint32_t mode = 0;
};

// --file-owner PATH=USER:GROUP; an empty side keeps the file's.
struct OwnerOp {
  std::string path;
  std::string user, group;  // names or numeric ids
};

struct RemediationRequest {
  std::vector<SetOp> sets;
  std::vector<ModeOp> modes;
  std::vector<OwnerOp> owners;
  bool create_config_file = false;  // the config file was named explicitly: create it if missing
  bool no_restart = false;
  std::vector<std::string> restart_command;  // empty: the default (nsenter ... systemctl)
};

// The node as read before planning (node paths).
struct NodeSnapshot {
  // The files the plan may edit: the detected flags files, the config file and its drop-ins.
  // NotFound: missing; another error: unreadable. A path absent here reads as an error.
  std::map<std::string, StatusOr<std::string>> contents;
  // The files of --file-mode and --file-owner.
  std::map<std::string, policy::FileFacts> facts;
  // The node's users and groups: a name or numeric id as given -> its id (nullopt: unknown),
  // and id -> name for display (absent: shown as the number).
  std::map<std::string, std::optional<uint32_t>> user_ids, group_ids;
  std::map<uint32_t, std::string> user_names, group_names;
};

// Replace a file's content atomically.
struct EditFile {
  std::string path;
  std::string content;
  bool backup = false;          // the file exists: keep its original as <path>.kpc-backup
  bool unit = false;            // a systemd unit or drop-in (daemon-reload before the restart)
  std::vector<size_t> changes;  // the AgentPlan::changes this write carries out
};

struct Chmod {
  std::string path;
  uint32_t mode = 0;
  size_t change = 0;  // index into AgentPlan::changes
};

struct Chown {
  std::string path;
  uint32_t uid = 0, gid = 0;
  size_t change = 0;
};

// Always the last action. Carried out only when at least one EditFile was written; then
// `daemon_reload` (when not empty) first, if a write with `unit` succeeded.
struct RestartKubelet {
  std::vector<std::string> daemon_reload;
  std::vector<std::string> argv;
};

using PlanAction = std::variant<EditFile, Chmod, Chown, RestartKubelet>;

struct AgentPlan {
  // Edits (by path), then chmods and chowns (in request order), then the restart.
  std::vector<PlanAction> actions;
  // The result's changes, `changed` as it will be when every action succeeds.
  std::vector<Change> changes;
  std::optional<Blocked> blocked;
  std::vector<std::string> errors;
  // The files whose state the result reports once the actions are done.
  std::vector<std::string> report_files;
};

// The default restart and reload commands (run in the host's namespaces of pid 1).
std::vector<std::string> DefaultRestartCommand();
std::vector<std::string> DefaultDaemonReloadCommand();

AgentPlan PlanAgentRemediation(const RemediationRequest& request, const Detection& detection,
                               const NodeSnapshot& node);

}  // namespace kpc::agent
