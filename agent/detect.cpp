#include "agent/detect.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <set>
#include <sstream>
#include <string_view>

#include "policy/model.h"

namespace kpc::agent {
namespace {

const char* const kUnitDirs[] = {"/etc/systemd/system", "/lib/systemd/system",
                                 "/usr/lib/systemd/system"};
const char* const kEnvFiles[] = {"/var/lib/kubelet/kubeadm-flags.env", "/etc/default/kubelet",
                                 "/etc/sysconfig/kubelet"};
// Rejected processes listed in the warning when no kubelet is verified.
constexpr size_t kMaxListedRejections = 8;

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

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string Shortened(std::string_view s, size_t max = 200) {
  if (s.size() <= max) return std::string(s);
  return std::string(s.substr(0, max)) + "...";
}

std::string AllowedRootsText() {
  std::string out;
  for (const auto& p : policy::AllowedFilePrefixes()) out += (out.empty() ? "" : ", ") + p;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading the proc root, bounded.

// A whole file (`name` in the directory `dir`) of at most `limit` bytes.
StatusOr<std::string> ReadBounded(int dir, const char* name, size_t limit) {
  int fd = ::openat(dir, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Status(StatusCode::kInternal, ErrnoText(errno));
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, std::min(sizeof buf, limit + 1 - out.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Status(StatusCode::kInternal, ErrnoText(err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > limit) {
      ::close(fd);
      return ResourceExhausted("longer than " + std::to_string(limit) + " bytes");
    }
  }
  ::close(fd);
  return out;
}

// The target of a symbolic link (procfs' magic links included) of at most `limit` bytes.
StatusOr<std::string> ReadLinkBounded(int dir, const char* name, size_t limit) {
  std::vector<char> buf(limit + 1);
  ssize_t n = ::readlinkat(dir, name, buf.data(), buf.size());
  if (n < 0) return Status(StatusCode::kInternal, ErrnoText(errno));
  if (static_cast<size_t>(n) > limit) {
    return ResourceExhausted("longer than " + std::to_string(limit) + " bytes");
  }
  return std::string(buf.data(), static_cast<size_t>(n));
}

// An open /proc/PID directory: every fact of a process is read through it, so they all describe
// one process even if the PID is reused meanwhile (its files then fail with ESRCH).
class ProcDir {
 public:
  ProcDir(const std::string& proc_root, int pid)
      : fd_(::open((proc_root + "/" + std::to_string(pid)).c_str(),
                   O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {}
  ~ProcDir() {
    if (fd_ >= 0) ::close(fd_);
  }
  ProcDir(const ProcDir&) = delete;
  ProcDir& operator=(const ProcDir&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

std::vector<int> ListPids(const std::string& proc_root) {
  std::vector<int> pids;
  DIR* proc = ::opendir(proc_root.c_str());
  if (proc == nullptr) return pids;
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
  return pids;
}

// The parent PID from /proc/PID/stat ("pid (comm) state ppid ..."; comm may hold anything).
int ParentPid(const std::string& stat) {
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream in(stat.substr(paren + 1));
  std::string state;
  long ppid = 0;
  if (!(in >> state >> ppid) || ppid <= 0 || ppid > 0x3fffffff) return 0;
  return static_cast<int>(ppid);
}

// The facts ChooseKubelet looks at, for one process named kubelet.
ProcessFacts GatherProcess(const ProcDir& dir, int pid, const std::string& comm, const HostFs& host,
                           const HostFs& init_root) {
  ProcessFacts f;
  f.pid = pid;
  f.comm = comm;
  auto note = [&](const std::string& what, const std::string& file, const Status& s) {
    f.unreadable.push_back(
        what + " (" + std::to_string(pid) + "/" + file + ") " +
        (s.code() == StatusCode::kResourceExhausted ? "is " : "cannot be read: ") + s.message());
  };
  if (auto stat = ReadBounded(dir.fd(), "stat", kMaxProcStatBytes); stat.ok()) {
    f.ppid = ParentPid(*stat);
  }
  if (auto exe = ReadLinkBounded(dir.fd(), "exe", kMaxExeLinkBytes); exe.ok()) {
    f.exe = *exe;
    struct stat st {};
    if (::fstatat(dir.fd(), "exe", &st, 0) == 0) {
      f.exe_file = FileIdentity{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                                static_cast<uint32_t>(st.st_mode)};
    } else {
      note("its executable", "exe", Status(StatusCode::kInternal, ErrnoText(errno)));
    }
    if (ValidateNodePath(f.exe).ok()) {
      if (auto id = host.Stat(f.exe); id.ok()) f.host_exe = *id;
      if (auto id = init_root.Stat(f.exe); id.ok()) f.init_root_exe = *id;
    }
  } else {
    note("its executable", "exe", exe.status());
  }
  if (auto ns = ReadLinkBounded(dir.fd(), "ns/mnt", kMaxNsLinkBytes); ns.ok()) {
    f.mnt_ns = *ns;
  } else {
    note("its mount namespace", "ns/mnt", ns.status());
  }
  if (auto cg = ReadBounded(dir.fd(), "cgroup", kMaxCgroupBytes); cg.ok()) {
    f.cgroup = *cg;
  } else {
    note("its cgroup", "cgroup", cg.status());
  }
  if (auto cmd = ReadBounded(dir.fd(), "cmdline", kMaxCmdlineBytes); cmd.ok()) {
    f.cmdline = *cmd;
  } else {
    note("its command line", "cmdline", cmd.status());
  }
  return f;
}

// Every process named kubelet under the proc root, with its facts.
StatusOr<std::vector<ProcessFacts>> GatherCandidates(const std::string& proc_root,
                                                     const HostFs& host) {
  const HostFs init_root(proc_root + "/1/root");
  std::vector<ProcessFacts> out;
  for (int pid : ListPids(proc_root)) {
    const ProcDir dir(proc_root, pid);
    if (dir.fd() < 0) continue;  // gone
    auto comm = ReadBounded(dir.fd(), "comm", kMaxCommBytes);
    if (!comm.ok()) continue;
    std::string name = *comm;
    while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
    if (name != "kubelet") continue;
    if (out.size() == kMaxKubeletCandidates) {
      return ResourceExhausted("more than " + std::to_string(kMaxKubeletCandidates) +
                               " processes are named kubelet under " + proc_root +
                               "; refusing to guess which one is the node's kubelet");
    }
    out.push_back(GatherProcess(dir, pid, name, host, init_root));
  }
  return out;
}

HostProcFacts GatherHost(const std::string& proc_root) {
  HostProcFacts h;
  const ProcDir init(proc_root, 1);
  auto ns = init.fd() < 0 ? StatusOr<std::string>(Status(StatusCode::kInternal, ErrnoText(ENOENT)))
                          : ReadLinkBounded(init.fd(), "ns/mnt", kMaxNsLinkBytes);
  if (ns.ok()) {
    h.mnt_ns = *ns;
  } else {
    h.problem = proc_root + "/1/ns/mnt cannot be read: " + ns.status().message();
  }
  return h;
}

// ---------------------------------------------------------------------------------------------
// Choosing (pure).

// The cgroup paths of a /proc/PID/cgroup text ("ID:CONTROLLERS:PATH" lines).
std::vector<std::string_view> CgroupPaths(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    size_t c1 = line.find(':');
    size_t c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 != std::string_view::npos) out.push_back(line.substr(c2 + 1));
  }
  return out;
}

template <typename Pred>
bool AnySegment(std::string_view path, Pred pred) {
  while (!path.empty()) {
    size_t slash = path.find('/');
    std::string_view seg = path.substr(0, slash);
    if (!seg.empty() && pred(seg)) return true;
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
  }
  return false;
}

// "pod<uid>" (cgroupfs driver) or "...-pod<uid>.slice" (systemd driver), uid with '-' or '_'.
bool IsPodSegment(std::string_view seg) {
  if (seg.size() > 6 && seg.substr(seg.size() - 6) == ".slice") seg.remove_suffix(6);
  size_t pod = seg.rfind("pod");
  if (pod == std::string_view::npos || (pod != 0 && seg[pod - 1] != '-')) return false;
  std::string_view uid = seg.substr(pod + 3);
  return uid.size() >= 32 && std::all_of(uid.begin(), uid.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) || c == '-' || c == '_';
         });
}

bool IsPodCgroup(std::string_view path) {
  return AnySegment(path, [](std::string_view seg) {
    return seg.find("kubepods") != std::string_view::npos || IsPodSegment(seg);
  });
}

bool IsKubeletCgroup(std::string_view path) {
  return AnySegment(
      path, [](std::string_view seg) { return seg.find("kubelet") != std::string_view::npos; });
}

// The path shown in messages: the unified hierarchy's ("0::PATH"), else the first.
std::string CgroupForDisplay(std::string_view text) {
  auto paths = CgroupPaths(text);
  if (paths.empty()) return "none";
  size_t line_start = 0;
  for (std::string_view path : paths) {
    if (text.compare(line_start, 3, "0::") == 0) return Shortened(path);
    line_start = static_cast<size_t>(path.data() - text.data()) + path.size() + 1;
  }
  return Shortened(paths.front());
}

std::string BaseName(std::string_view p) {
  size_t slash = p.rfind('/');
  return std::string(slash == std::string_view::npos ? p : p.substr(slash + 1));
}

// Why `c` is not the node's kubelet, or "" when it may be.
std::string RejectionReason(const ProcessFacts& c, const HostProcFacts& host) {
  if (c.comm != "kubelet") return "its name is \"" + Shortened(c.comm, 64) + "\", not kubelet";
  if (!c.unreadable.empty()) {
    std::string out;
    for (const auto& u : c.unreadable) out += (out.empty() ? "" : "; ") + u;
    return out;
  }
  for (std::string_view path : CgroupPaths(c.cgroup)) {
    if (IsPodCgroup(path)) {
      return "it runs in a pod's cgroup (" + Shortened(path) +
             "): a container, not the node's kubelet";
    }
  }
  if (host.mnt_ns.empty()) return "the host's mount namespace is unknown (" + host.problem + ")";
  if (c.mnt_ns != host.mnt_ns) {
    return "its mount namespace " + Shortened(c.mnt_ns, 64) + " is not the host's (" + host.mnt_ns +
           ")";
  }
  const std::string exe = Shortened(c.exe);
  if (BaseName(c.exe) != "kubelet") return "its executable " + exe + " is not named kubelet";
  if (!c.exe_file || !S_ISREG(c.exe_file->mode) || (c.exe_file->mode & 0111) == 0) {
    return "its executable " + exe + " is not an executable regular file";
  }
  const bool on_host = (c.host_exe && SameFile(*c.host_exe, *c.exe_file)) ||
                       (c.init_root_exe && SameFile(*c.init_root_exe, *c.exe_file));
  if (!on_host) {
    return "its executable is not the file at " + exe +
           " on the host (under the host root or PID 1's root)";
  }
  return "";
}

std::string Describe(const ProcessFacts& c) {
  return "pid " + std::to_string(c.pid) + " (executable " + Shortened(c.exe) +
         " of the host, in the host's mount namespace, cgroup " + CgroupForDisplay(c.cgroup) + ")";
}

}  // namespace

StatusOr<KubeletChoice> ChooseKubelet(const std::vector<ProcessFacts>& candidates,
                                      const HostProcFacts& host) {
  KubeletChoice choice;
  std::vector<const ProcessFacts*> left;
  for (const ProcessFacts& c : candidates) {
    std::string why = RejectionReason(c, host);
    if (why.empty()) {
      left.push_back(&c);
    } else {
      choice.rejected.push_back({c.pid, why});
    }
  }
  // A child the kubelet forks runs the kubelet's executable until it execs: keep the parent.
  std::vector<const ProcessFacts*> roots;
  for (const ProcessFacts* c : left) {
    auto parent = std::find_if(left.begin(), left.end(), [&](const ProcessFacts* p) {
      return p->pid == c->ppid && SameFile(*p->exe_file, *c->exe_file);
    });
    if (parent == left.end()) {
      roots.push_back(c);
    } else {
      choice.rejected.push_back({c->pid, "a child of kubelet process " + std::to_string(c->ppid)});
    }
  }
  std::vector<const ProcessFacts*> preferred;
  for (const ProcessFacts* c : roots) {
    auto paths = CgroupPaths(c->cgroup);
    if (std::any_of(paths.begin(), paths.end(), IsKubeletCgroup)) preferred.push_back(c);
  }
  if (!preferred.empty() && preferred.size() < roots.size()) {
    for (const ProcessFacts* c : roots) {
      if (std::find(preferred.begin(), preferred.end(), c) != preferred.end()) continue;
      choice.rejected.push_back({c->pid, "not in a kubelet cgroup (" + CgroupForDisplay(c->cgroup) +
                                             ") while pid " +
                                             std::to_string(preferred.front()->pid) + " is"});
    }
    roots = preferred;
  }
  if (roots.size() > 1) {
    std::string list;
    for (const ProcessFacts* c : roots) list += (list.empty() ? "" : ", ") + Describe(*c);
    return Status(StatusCode::kConflict,
                  "several processes pass as the node's kubelet, refusing to guess which one's "
                  "files to change: " +
                      list);
  }
  if (roots.size() == 1) choice.pid = roots.front()->pid;
  std::sort(choice.rejected.begin(), choice.rejected.end(),
            [](const Rejection& a, const Rejection& b) { return a.pid < b.pid; });
  return choice;
}

namespace {

// 1. The running kubelet, verified; a warning when there is none.
Status FindKubeletProcess(HostFs& fs, const std::string& proc_root, Detection& d) {
  auto candidates = GatherCandidates(proc_root, fs);
  if (!candidates.ok()) return candidates.status();
  const HostProcFacts host = candidates->empty() ? HostProcFacts{} : GatherHost(proc_root);
  auto choice = ChooseKubelet(*candidates, host);
  if (!choice.ok()) return choice.status();
  if (choice->pid) {
    d.pid = choice->pid;
    for (const ProcessFacts& c : *candidates) {
      if (c.pid != *d.pid) continue;
      d.process_flags =
          FlagsFromCmdline(c.cmdline, "kubelet process " + std::to_string(c.pid) + " command line");
    }
    return Status::Ok();
  }
  std::string why;
  for (size_t i = 0; i < choice->rejected.size() && i < kMaxListedRejections; ++i) {
    const Rejection& r = choice->rejected[i];
    why += (why.empty() ? "" : "; ") + ("pid " + std::to_string(r.pid) + ": " + r.reason);
  }
  if (choice->rejected.size() > kMaxListedRejections) {
    why += "; and " + std::to_string(choice->rejected.size() - kMaxListedRejections) + " more";
  }
  if (why.empty()) why = "no process is named kubelet under " + proc_root;
  d.warnings.push_back("no running kubelet was verified (" + why +
                       "); the kubelet's files and flags come from its systemd unit and env files "
                       "only");
  return Status::Ok();
}

// Whether a detected path may be used; a warning when not.
bool AllowedDetectedPath(const std::string& path, const std::string& what,
                         std::vector<std::string>& warnings) {
  if (policy::UnderAllowedFilePrefix(path)) return true;
  warnings.push_back("ignoring " + what + " \"" + Shortened(path) +
                     "\": outside the directories the agent may touch (" + AllowedRootsText() +
                     ")");
  return false;
}

// EnvironmentFile= paths of a unit ("-" prefix: optional).
std::vector<std::string> EnvironmentFiles(const std::string& unit, const std::string& content,
                                          std::vector<std::string>& warnings) {
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
    if (v.empty() || v[0] != '/' || !ValidateNodePath(v).ok()) continue;
    if (AllowedDetectedPath(v, "the EnvironmentFile= of " + unit, warnings)) out.push_back(v);
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

// Names in a node directory; none when it cannot be listed.
std::vector<std::string> ListDir(HostFs& fs, const std::string& node_dir) {
  auto names = fs.ListDir(node_dir);
  return names.ok() ? *names : std::vector<std::string>{};
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
    for (const std::string& e : EnvironmentFiles(f, *text, warnings)) env_files.push_back(e);
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

// A detected file path: absolute, without "." or "..", under the allowed directories; else ""
// and a warning.
std::string UsableDetectedPath(const std::string& path, const std::string& what,
                               std::vector<std::string>& warnings) {
  if (path.empty()) return path;
  if (!ValidateNodePath(path).ok()) {
    warnings.push_back("ignoring the kubelet's file path \"" + Shortened(path) +
                       "\": not an absolute path");
    return "";
  }
  return AllowedDetectedPath(path, what, warnings) ? path : "";
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
  d.files.config_file =
      UsableDetectedPath(d.files.config_file, "the kubelet's --config file", d.warnings);
  d.files.kubeconfig =
      UsableDetectedPath(d.files.kubeconfig, "the kubelet's --kubeconfig", d.warnings);
  if (!d.config_dir.empty() && ValidateNodePath(d.config_dir).ok() &&
      AllowedDetectedPath(d.config_dir, "the kubelet's --config-dir", d.warnings)) {
    for (const std::string& name : ListDir(fs, d.config_dir)) {
      std::string p = d.config_dir + (d.config_dir.back() == '/' ? "" : "/") + name;
      if (EndsWith(name, ".conf") && !fs.IsDirectory(p)) d.config_dropins.push_back(p);
    }
  }
  if (!opts.config_file.empty()) d.files.config_file = opts.config_file;
}

}  // namespace

std::vector<std::string> SplitCmdline(const std::string& cmdline) {
  std::vector<std::string> argv;
  size_t start = 0;
  while (start < cmdline.size()) {
    size_t nul = cmdline.find('\0', start);
    if (nul == std::string::npos) nul = cmdline.size();
    argv.push_back(cmdline.substr(start, nul - start));
    start = nul + 1;
  }
  return argv;
}

std::vector<policy::KubeletFlag> FlagsFromCmdline(const std::string& cmdline,
                                                  const std::string& origin) {
  const std::vector<std::string> argv = SplitCmdline(cmdline);
  std::string text;
  for (size_t i = 1; i < argv.size(); ++i) text += (i > 1 ? " " : "") + ShellQuote(argv[i]);
  // A plain command line (not an assignment): ParseKubeletFlags reads it like a flags file.
  auto flags = policy::ParseKubeletFlags(text, origin);
  if (!flags.ok()) return {};
  for (auto& f : *flags) f.origin = origin;
  return *flags;
}

StatusOr<Detection> DetectKubelet(HostFs& fs, const DetectOptions& opts) {
  Detection d;
  Status found = FindKubeletProcess(fs, opts.proc_root, d);
  if (!found.ok()) return found;
  d.files.service_files = SystemdFiles(fs);
  std::vector<std::string> candidates = FlagsFileCandidates(fs, d.files.service_files, d.warnings);
  if (!opts.flags_files.empty()) candidates = opts.flags_files;
  std::vector<policy::KubeletFlag> all_file_flags =
      ReadFlagsFiles(fs, candidates, /*keep_empty=*/!opts.flags_files.empty(), d);
  ResolveKubeletFiles(fs, opts, all_file_flags, d);
  return d;
}

}  // namespace kpc::agent
