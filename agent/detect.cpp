#include "agent/detect.h"

#include <dirent.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

namespace kpc::agent {
namespace {

const char* const kUnitDirs[] = {"/etc/systemd/system", "/lib/systemd/system",
                                 "/usr/lib/systemd/system"};
const char* const kEnvFiles[] = {"/var/lib/kubelet/kubeadm-flags.env", "/etc/default/kubelet",
                                 "/etc/sysconfig/kubelet"};

bool ReadSmallFile(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Directory entries of a node directory (names only), sorted.
std::vector<std::string> ListDir(HostFs& fs, const std::string& node_dir) {
  std::vector<std::string> names;
  auto host = fs.Resolve(node_dir);
  if (!host.ok()) return names;
  DIR* d = ::opendir(host->c_str());
  if (d == nullptr) return names;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// EnvironmentFile= paths of a unit ("-" prefix: optional).
std::vector<std::string> EnvironmentFiles(const std::string& content) {
  std::vector<std::string> out;
  std::istringstream in(content);
  std::string line;
  while (std::getline(in, line)) {
    size_t i = line.find_first_not_of(" \t");
    if (i == std::string::npos || line.compare(i, 16, "EnvironmentFile=") != 0) continue;
    std::string v = line.substr(i + 16);
    while (!v.empty() && (v.back() == '\r' || v.back() == ' ' || v.back() == '\t')) v.pop_back();
    if (!v.empty() && v[0] == '-') v.erase(0, 1);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    if (!v.empty() && v[0] == '/' && ValidateNodePath(v).ok()) out.push_back(v);
  }
  return out;
}

std::optional<std::string> LastValue(const std::vector<policy::KubeletFlag>& flags,
                                     const std::string& name) {
  std::optional<std::string> v;
  for (const auto& f : flags) {
    std::string n = f.name;
    std::replace(n.begin(), n.end(), '_', '-');
    if (n == name && f.value) v = *f.value;
  }
  return v;
}

// 1. The running kubelet: the first process (by pid) whose comm is "kubelet".
void FindKubeletProcess(const std::string& proc_root, Detection& d) {
  DIR* proc = ::opendir(proc_root.c_str());
  if (proc == nullptr) return;
  std::vector<int> pids;
  while (struct dirent* e = ::readdir(proc)) {
    std::string n = e->d_name;
    if (!n.empty() && n.size() < 10 && std::all_of(n.begin(), n.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        })) {
      pids.push_back(std::stoi(n));
    }
  }
  ::closedir(proc);
  std::sort(pids.begin(), pids.end());
  for (int pid : pids) {
    std::string dir = proc_root + "/" + std::to_string(pid);
    std::string comm, cmdline;
    if (!ReadSmallFile(dir + "/comm", comm)) continue;
    while (!comm.empty() && (comm.back() == '\n' || comm.back() == '\r')) comm.pop_back();
    if (comm != "kubelet") continue;
    if (!ReadSmallFile(dir + "/cmdline", cmdline)) continue;
    d.pid = pid;
    d.process_flags =
        FlagsFromCmdline(cmdline, "kubelet process " + std::to_string(pid) + " command line");
    return;
  }
}

// 2. The systemd unit and its drop-ins (a name in an earlier directory masks the later ones).
std::vector<std::string> SystemdFiles(HostFs& fs) {
  std::string unit;
  std::map<std::string, std::string> dropins;  // file name -> node path (first directory wins)
  for (const char* dir : kUnitDirs) {
    std::string u = std::string(dir) + "/kubelet.service";
    if (unit.empty() && fs.Exists(u) && !fs.IsDirectory(u)) unit = u;
    std::string ddir = u + ".d";
    for (const std::string& name : ListDir(fs, ddir)) {
      if (EndsWith(name, ".conf") && dropins.count(name) == 0) dropins[name] = ddir + "/" + name;
    }
  }
  std::vector<std::string> service_files;
  if (!unit.empty()) service_files.push_back(unit);
  for (const auto& [name, path] : dropins) service_files.push_back(path);
  return service_files;
}

// 3. The files that may set flags: the units, then the env files they name, then the default
// env files that exist.
std::vector<std::string> FlagsFileCandidates(HostFs& fs,
                                             const std::vector<std::string>& service_files,
                                             std::vector<std::string>& warnings) {
  std::vector<std::string> candidates = service_files;
  std::set<std::string> seen(candidates.begin(), candidates.end());
  std::vector<std::string> env_files;
  for (const std::string& f : service_files) {
    auto text = fs.ReadFile(f);
    if (!text.ok()) {
      warnings.push_back(text.status().message());
      continue;
    }
    for (const std::string& e : EnvironmentFiles(*text)) env_files.push_back(e);
  }
  for (const char* e : kEnvFiles) env_files.push_back(e);
  for (const std::string& e : env_files) {
    if (seen.insert(e).second && fs.Exists(e)) candidates.push_back(e);
  }
  return candidates;
}

// The flags of each candidate into `d` (files that set none only when `keep_empty`); returns
// them all in kubelet order.
std::vector<policy::KubeletFlag> ReadFlagsFiles(HostFs& fs,
                                                const std::vector<std::string>& candidates,
                                                bool keep_empty, Detection& d) {
  std::vector<policy::KubeletFlag> all;
  for (const std::string& f : candidates) {
    auto text = fs.ReadFile(f);
    if (!text.ok()) {
      d.warnings.push_back(text.status().message());
      continue;
    }
    auto flags = policy::ParseKubeletFlags(*text, f);
    if (!flags.ok()) {
      d.warnings.push_back(flags.status().message());
      continue;
    }
    if (flags->empty() && !keep_empty) continue;
    d.files.flags_files.push_back(f);
    d.file_flags[f] = *flags;
    all.insert(all.end(), flags->begin(), flags->end());
  }
  return all;
}

// The config file, kubeconfig and --config-dir drop-ins: from the process when found, else
// from the files.
void ResolveKubeletFiles(HostFs& fs, const DetectOptions& opts,
                         const std::vector<policy::KubeletFlag>& file_flags, Detection& d) {
  const std::vector<policy::KubeletFlag>& source = d.pid ? d.process_flags : file_flags;
  if (auto c = LastValue(source, "config")) d.files.config_file = *c;
  if (auto k = LastValue(source, "kubeconfig")) d.files.kubeconfig = *k;
  if (d.pid && d.files.config_file.empty()) {
    if (auto c = LastValue(file_flags, "config")) d.files.config_file = *c;
  }
  if (d.pid && d.files.kubeconfig.empty()) {
    if (auto k = LastValue(file_flags, "kubeconfig")) d.files.kubeconfig = *k;
  }
  if (auto dir = LastValue(source, "config-dir")) d.config_dir = *dir;
  if (!opts.config_file.empty()) d.files.config_file = opts.config_file;
  if (!d.config_dir.empty() && ValidateNodePath(d.config_dir).ok()) {
    for (const std::string& name : ListDir(fs, d.config_dir)) {
      std::string p = d.config_dir + (d.config_dir.back() == '/' ? "" : "/") + name;
      if (EndsWith(name, ".conf") && !fs.IsDirectory(p)) d.config_dropins.push_back(p);
    }
  }
  for (std::string* p : {&d.files.config_file, &d.files.kubeconfig}) {
    if (!p->empty() && !ValidateNodePath(*p).ok()) {
      d.warnings.push_back("ignoring the kubelet's file path \"" + *p + "\": not an absolute path");
      p->clear();
    }
  }
}

}  // namespace

std::vector<policy::KubeletFlag> FlagsFromCmdline(const std::string& cmdline,
                                                  const std::string& origin) {
  std::vector<std::string> argv;
  size_t start = 0;
  while (start < cmdline.size()) {
    size_t nul = cmdline.find('\0', start);
    if (nul == std::string::npos) nul = cmdline.size();
    argv.push_back(cmdline.substr(start, nul - start));
    start = nul + 1;
  }
  std::string text;
  for (size_t i = 1; i < argv.size(); ++i) text += (i > 1 ? " " : "") + ShellQuote(argv[i]);
  // A plain command line (not an assignment): ParseKubeletFlags reads it like a flags file.
  auto flags = policy::ParseKubeletFlags(text, origin);
  if (!flags.ok()) return {};
  for (auto& f : *flags) f.origin = origin;
  return *flags;
}

Detection DetectKubelet(HostFs& fs, const DetectOptions& opts) {
  Detection d;
  FindKubeletProcess(opts.proc_root, d);
  d.files.service_files = SystemdFiles(fs);
  std::vector<std::string> candidates = FlagsFileCandidates(fs, d.files.service_files, d.warnings);
  if (!opts.flags_files.empty()) candidates = opts.flags_files;
  std::vector<policy::KubeletFlag> all_file_flags =
      ReadFlagsFiles(fs, candidates, /*keep_empty=*/!opts.flags_files.empty(), d);
  ResolveKubeletFiles(fs, opts, all_file_flags, d);
  return d;
}

}  // namespace kpc::agent
