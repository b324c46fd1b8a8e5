#pragma once
// Temporary directories and file helpers for the agent tests.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace kpc::agent::testing {

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("kpc-agent-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string path() const { return path_.string(); }
  // Writes `content` at `rel` (a node path like "/etc/x"), creating directories.
  std::string Write(const std::string& rel, const std::string& content, mode_t mode = 0644) const {
    auto p = path_ / std::filesystem::path(rel).relative_path();
    std::filesystem::create_directories(p.parent_path());
    { std::ofstream(p, std::ios::binary | std::ios::trunc) << content; }
    ::chmod(p.c_str(), mode);
    return p.string();
  }
  std::string Read(const std::string& rel) const {
    std::ifstream in(path_ / std::filesystem::path(rel).relative_path(), std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  bool Exists(const std::string& rel) const {
    return std::filesystem::exists(path_ / std::filesystem::path(rel).relative_path());
  }
  std::string Host(const std::string& rel) const {
    return (path_ / std::filesystem::path(rel).relative_path()).string();
  }

 private:
  std::filesystem::path path_;
};

// The host's mount namespace in fake proc roots, and another one.
inline constexpr const char* kHostMntNs = "mnt:[4026531840]";
inline constexpr const char* kOtherMntNs = "mnt:[4026532999]";

// A fake proc root (the directory `rel` of a TempDir that is also the host root), with the files
// detection reads for each process. PID 1 (the host's init) is in kHostMntNs.
class FakeProc {
 public:
  struct Process {
    int pid = 0;
    int ppid = 1;
    std::string comm = "kubelet";
    std::vector<std::string> argv = {"/usr/bin/kubelet"};
    std::string mnt_ns = kHostMntNs;
    std::string cgroup = "0::/system.slice/kubelet.service\n";
    std::string exe = {};  // a real path; HostBinary() when empty
  };

  explicit FakeProc(const TempDir& t, std::string rel = "/proc-fake")
      : t_(t), rel_(std::move(rel)) {
    std::filesystem::create_directories(t_.Host(rel_ + "/1/ns"));
    std::filesystem::create_symlink(kHostMntNs, t_.Host(rel_ + "/1/ns/mnt"));
    t_.Write(rel_ + "/1/comm", "systemd\n");
  }

  std::string path() const { return t_.Host(rel_); }
  std::string Dir(int pid) const { return rel_ + "/" + std::to_string(pid); }

  // The host's kubelet executable `name` in a bin directory of the host root. /proc/PID/exe names
  // it by its real path, which is a path on this machine, not on the fake node; the same path
  // under the host root is made a hard link to it, so it is the same file on the node too.
  std::string HostBinary(const std::string& name = "kubelet") const {
    const std::string real = t_.Write("/usr/bin/" + name, "#!/bin/true\n", 0755);
    const std::string alias = t_.Host(real);
    if (!std::filesystem::exists(alias)) {
      std::filesystem::create_directories(std::filesystem::path(alias).parent_path());
      std::filesystem::create_hard_link(real, alias);
    }
    return real;
  }

  void Add(const Process& p) const {
    const std::string dir = Dir(p.pid);
    std::string cmdline;
    for (const auto& a : p.argv) cmdline += a + '\0';
    t_.Write(dir + "/comm", p.comm + "\n");
    t_.Write(dir + "/cmdline", cmdline);
    t_.Write(dir + "/cgroup", p.cgroup);
    t_.Write(dir + "/stat", std::to_string(p.pid) + " (" + p.comm + ") S " +
                                std::to_string(p.ppid) + " 1 1 0 -1 4194560 0 0 0 0\n");
    std::filesystem::create_directories(t_.Host(dir + "/ns"));
    std::filesystem::remove(t_.Host(dir + "/ns/mnt"));
    std::filesystem::create_symlink(p.mnt_ns, t_.Host(dir + "/ns/mnt"));
    std::filesystem::remove(t_.Host(dir + "/exe"));
    std::filesystem::create_symlink(p.exe.empty() ? HostBinary() : p.exe, t_.Host(dir + "/exe"));
  }

 private:
  const TempDir& t_;
  std::string rel_;
};

}  // namespace kpc::agent::testing
