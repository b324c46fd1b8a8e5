#include "agent/plan.h"

#include <algorithm>
#include <utility>

#include "agent/config_edit.h"
#include "agent/flags_edit.h"

namespace kpc::agent {
namespace {

using nlohmann::json;

const std::vector<std::string> kNsenter = {"nsenter", "--target", "1",     "--mount", "--uts",
                                           "--ipc",   "--net",    "--pid", "--"};

std::string JoinMessages(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

// Rule 1: a flag only on the running kubelet's command line overrides whatever the agent
// writes, unless it already gives the wanted value.
std::optional<Blocked> CommandLineOverrides(const RemediationRequest& request,
                                            const Detection& det) {
  std::vector<std::string> blocked;
  for (const SetOp& s : request.sets) {
    bool in_files = false;
    for (const auto& [file, flags] : det.file_flags)
      in_files = in_files || FlagsOverrideField(flags, s.match);
    std::optional<json> running = det.pid ? FlagsValue(det.process_flags, s.match) : std::nullopt;
    bool overrides = det.pid && FlagsOverrideField(det.process_flags, s.match);
    if (overrides && !in_files && !(running && TypedEqual(*running, s.value, s.match.type))) {
      blocked.push_back(s.path.ToString() + " is overridden by the kubelet flag --" +
                        s.match.field->flag + " on the running kubelet's command line (pid " +
                        std::to_string(*det.pid) +
                        "), and no flags file the agent can edit sets it");
    }
  }
  if (blocked.empty()) return std::nullopt;
  return Blocked{"FlagOverride", JoinMessages(blocked) +
                                     "; remove the flag where the kubelet's command line is "
                                     "defined, then remediate again"};
}

// A file being edited: its content as read and as it will be written.
struct Buffer {
  bool exists = false;
  bool create = false;  // a new config file
  std::string original;
  std::string text;
  bool unit = false;
  std::vector<size_t> changes;
  bool Modified() const { return exists ? text != original : create; }
};

class Planner {
 public:
  Planner(const RemediationRequest& request, const Detection& det, const NodeSnapshot& node)
      : request_(request), det_(det), node_(node) {}

  AgentPlan Run() && {
    if (auto blocked = CommandLineOverrides(request_, det_)) {
      plan_.blocked = std::move(blocked);
      return std::move(plan_);
    }
    for (const SetOp& s : request_.sets) PlanConfig(s, PlanFlags(s));
    std::vector<Chown> chowns = ResolveOwners();
    CheckModes();
    for (const auto& [path, buffer] : edits_) plan_.report_files.push_back(path);
    if (!unfixable_.empty() || !plan_.errors.empty()) {
      if (!unfixable_.empty()) plan_.blocked = Blocked{"FlagOverride", JoinMessages(unfixable_)};
      for (Change& c : plan_.changes) c.changed = false;  // nothing will be written
      return std::move(plan_);
    }
    AddActions(chowns);
    return std::move(plan_);
  }

 private:
  Buffer* Load(const std::string& path);
  bool PlanFlags(const SetOp& s);
  void PlanConfig(const SetOp& s, bool in_flags_files);
  void PlanDropIns(const SetOp& s);
  void RecordConfigEdit(Buffer& buffer, const std::string& file, const SetOp& s,
                        const ConfigEdit& edit, const std::string& note);
  std::vector<Chown> ResolveOwners();
  void CheckModes();
  void AddActions(const std::vector<Chown>& chowns);
  std::string OwnerDisplay(uint32_t uid, uint32_t gid) const;

  const RemediationRequest& request_;
  const Detection& det_;
  const NodeSnapshot& node_;
  AgentPlan plan_;
  std::map<std::string, Buffer> edits_;
  std::vector<std::string> unfixable_;  // flags that cannot be rewritten safely
};

// The buffer of `path`, taken from the snapshot on first use; nullptr (and an error) when the
// file could not be read.
Buffer* Planner::Load(const std::string& path) {
  if (auto it = edits_.find(path); it != edits_.end()) return &it->second;
  auto read = node_.contents.find(path);
  if (read == node_.contents.end()) {
    plan_.errors.push_back(path + ": not read before planning");
    return nullptr;
  }
  Buffer b;
  if (!read->second.ok()) {
    if (read->second.status().code() != StatusCode::kNotFound) {
      plan_.errors.push_back(read->second.status().message());
      return nullptr;
    }
  } else {
    b.exists = true;
    b.original = b.text = *read->second;
  }
  const auto& units = det_.files.service_files;
  b.unit = std::find(units.begin(), units.end(), path) != units.end();
  return &edits_.emplace(path, std::move(b)).first->second;
}

// Rule 2. Whether a flags file sets the field.
bool Planner::PlanFlags(const SetOp& s) {
  bool in_files = false;
  for (const auto& [file, flags] : det_.file_flags) {
    if (!FlagsOverrideField(flags, s.match)) continue;
    in_files = true;
    Buffer* b = Load(file);
    if (b == nullptr) continue;
    auto fe = SetFlagInFile(b->text, file, s.match, s.value);
    if (!fe.ok()) {
      // The flag overrides the file and cannot be rewritten safely: retrying will not help.
      if (fe.status().code() == StatusCode::kInvalidArgument) {
        unfixable_.push_back(fe.status().message());
      } else {
        plan_.errors.push_back(fe.status().message());
      }
      continue;
    }
    b->text = fe->text;
    Change c;
    c.kind = "flag";
    c.field = s.path.ToString();
    c.flag = s.match.field->flag;
    c.file = file;
    c.from = fe->from;
    c.to = fe->to;
    c.changed = fe->changed;
    b->changes.push_back(plan_.changes.size());
    plan_.changes.push_back(std::move(c));
  }
  return in_files;
}

// Rule 3.
void Planner::PlanConfig(const SetOp& s, bool in_flags_files) {
  const std::string& config = det_.files.config_file;
  if (config.empty()) {
    if (!in_flags_files) {
      plan_.errors.push_back(
          "cannot set " + s.path.ToString() +
          ": the kubelet has no config file (no --config found); pass --config-file");
    }
    return;
  }
  Buffer* b = Load(config);
  if (b == nullptr) return;
  std::string note;
  if (!b->exists && b->text.empty()) {
    if (!request_.create_config_file) {
      plan_.errors.push_back(
          "the kubelet config file " + config +
          " (from the kubelet's --config) does not exist; pass --config-file to create it");
      return;
    }
    b->text = NewConfigFileContent(DetectConfigFormat("", config));
    b->create = true;
    note = "file created";
  }
  PlanDropIns(s);
  auto ce = SetConfigField(b->text, config, s.path, s.value, s.match.type);
  if (!ce.ok()) {
    plan_.errors.push_back(ce.status().message());
    return;
  }
  if (!ce->note.empty()) note = note.empty() ? ce->note : note + "; " + ce->note;
  RecordConfigEdit(*b, config, s, *ce, note);
}

// Drop-ins of --config-dir are applied over the config file: one that sets the field would
// override the value written there, so it gets the value too.
void Planner::PlanDropIns(const SetOp& s) {
  for (const std::string& dropin : det_.config_dropins) {
    Buffer* d = Load(dropin);
    if (d == nullptr || !d->exists) continue;
    auto parsed = policy::ParseKubeletConfigFile(d->text, dropin);
    if (!parsed.ok()) {
      plan_.errors.push_back(parsed.status().message());
      continue;
    }
    if (s.path.Find(*parsed) == nullptr) continue;
    auto de = SetConfigField(d->text, dropin, s.path, s.value, s.match.type);
    if (!de.ok()) {
      plan_.errors.push_back(de.status().message());
      continue;
    }
    RecordConfigEdit(*d, dropin, s, *de, de->note);
  }
}

void Planner::RecordConfigEdit(Buffer& buffer, const std::string& file, const SetOp& s,
                               const ConfigEdit& edit, const std::string& note) {
  buffer.text = edit.text;
  Change c;
  c.kind = "config";
  c.field = s.path.ToString();
  c.file = file;
  if (edit.from) c.from = policy::DisplayValue(*edit.from);
  c.to = policy::DisplayValue(s.value);
  c.changed = edit.changed;
  c.note = note;
  buffer.changes.push_back(plan_.changes.size());
  plan_.changes.push_back(std::move(c));
}

std::optional<uint32_t> LookUp(const std::map<std::string, std::optional<uint32_t>>& ids,
                               const std::string& name) {
  auto it = ids.find(name);
  return it == ids.end() ? std::nullopt : it->second;
}

policy::FileFacts FactsOf(const NodeSnapshot& node, const std::string& path) {
  auto it = node.facts.find(path);
  if (it != node.facts.end()) return it->second;
  policy::FileFacts unknown;
  unknown.error = "not examined before planning";
  return unknown;
}

// Rule 4: the owner each --file-owner asks for, the side not given kept as it is now.
std::vector<Chown> Planner::ResolveOwners() {
  std::vector<Chown> out;
  for (const OwnerOp& op : request_.owners) {
    policy::FileFacts facts = FactsOf(node_, op.path);
    if (!facts.error.empty()) {
      plan_.errors.push_back(op.path + ": " + facts.error);
      continue;
    }
    if (!facts.exists) {
      plan_.errors.push_back("cannot chown " + op.path + ": it does not exist");
      continue;
    }
    Chown c{op.path, facts.uid, facts.gid, 0};
    if (!op.user.empty()) {
      auto uid = LookUp(node_.user_ids, op.user);
      if (!uid) {
        plan_.errors.push_back("cannot chown " + op.path + ": no user \"" + op.user +
                               "\" in the node's /etc/passwd");
        continue;
      }
      c.uid = *uid;
    }
    if (!op.group.empty()) {
      auto gid = LookUp(node_.group_ids, op.group);
      if (!gid) {
        plan_.errors.push_back("cannot chown " + op.path + ": no group \"" + op.group +
                               "\" in the node's /etc/group");
        continue;
      }
      c.gid = *gid;
    }
    out.push_back(std::move(c));
  }
  return out;
}

void Planner::CheckModes() {
  for (const ModeOp& op : request_.modes) {
    policy::FileFacts facts = FactsOf(node_, op.path);
    if (!facts.error.empty()) {
      plan_.errors.push_back(op.path + ": " + facts.error);
    } else if (!facts.exists) {
      plan_.errors.push_back("cannot chmod " + op.path + ": it does not exist");
    }
  }
}

Change FileChange(const char* kind, const std::string& path, std::string from, std::string to) {
  Change c;
  c.kind = kind;
  c.path = path;
  c.from = std::move(from);
  c.to = std::move(to);
  return c;
}

std::string NameOrId(const std::map<uint32_t, std::string>& names, uint32_t id) {
  auto it = names.find(id);
  return it == names.end() || it->second.empty() ? std::to_string(id) : it->second;
}

std::string Planner::OwnerDisplay(uint32_t uid, uint32_t gid) const {
  return NameOrId(node_.user_names, uid) + ":" + NameOrId(node_.group_names, gid);
}

// Rules 4 and 6, once nothing stands in the way. Modes and owners are compared with the state
// the earlier actions leave (a path may be named twice).
void Planner::AddActions(const std::vector<Chown>& chowns) {
  bool wrote = false, unit = false;
  for (const auto& [path, b] : edits_) {
    if (!b.Modified()) continue;
    plan_.actions.push_back(EditFile{path, b.text, b.exists, b.unit, b.changes});
    wrote = true;
    unit = unit || b.unit;
  }
  std::map<std::string, policy::FileFacts> now = node_.facts;
  for (const ModeOp& op : request_.modes) {
    policy::FileFacts& f = now[op.path];
    Change c = FileChange("mode", op.path, FormatMode(f.mode), FormatMode(op.mode));
    if (f.mode != op.mode) {
      c.changed = true;
      plan_.actions.push_back(Chmod{op.path, op.mode, plan_.changes.size()});
      f.mode = op.mode;
    }
    plan_.changes.push_back(std::move(c));
    plan_.report_files.push_back(op.path);
  }
  for (const Chown& want : chowns) {
    policy::FileFacts& f = now[want.path];
    Change c = FileChange("owner", want.path, OwnerDisplay(f.uid, f.gid),
                          OwnerDisplay(want.uid, want.gid));
    if (f.uid != want.uid || f.gid != want.gid) {
      c.changed = true;
      plan_.actions.push_back(Chown{want.path, want.uid, want.gid, plan_.changes.size()});
      f.uid = want.uid;
      f.gid = want.gid;
    }
    plan_.changes.push_back(std::move(c));
    plan_.report_files.push_back(want.path);
  }
  if (!wrote || request_.no_restart) return;
  RestartKubelet restart;
  if (!request_.restart_command.empty()) {
    restart.argv = request_.restart_command;
  } else {
    if (unit) restart.daemon_reload = DefaultDaemonReloadCommand();
    restart.argv = DefaultRestartCommand();
  }
  plan_.actions.push_back(std::move(restart));
}

}  // namespace

std::vector<std::string> DefaultRestartCommand() {
  auto argv = kNsenter;
  argv.insert(argv.end(), {"systemctl", "restart", "kubelet"});
  return argv;
}

std::vector<std::string> DefaultDaemonReloadCommand() {
  auto argv = kNsenter;
  argv.insert(argv.end(), {"systemctl", "daemon-reload"});
  return argv;
}

AgentPlan PlanAgentRemediation(const RemediationRequest& request, const Detection& detection,
                               const NodeSnapshot& node) {
  return Planner(request, detection, node).Run();
}

}  // namespace kpc::agent
