// Which process is the node's kubelet: ChooseKubelet over tables of facts, and DetectKubelet
// over fake proc roots (decoys, ambiguity, every limit on what is read from /proc).
#include "agent/detect.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <functional>

#include "tests/agent/test_util.h"

namespace kpc::agent {
namespace {

using testing::FakeProc;
using testing::kHostMntNs;
using testing::kOtherMntNs;
using testing::TempDir;

const FileIdentity kKubeletBinary{1, 100, S_IFREG | 0755};

// A process that passes every check.
ProcessFacts Real(int pid) {
  ProcessFacts f;
  f.pid = pid;
  f.ppid = 1;
  f.comm = "kubelet";
  f.exe = "/usr/bin/kubelet";
  f.exe_file = kKubeletBinary;
  f.host_exe = kKubeletBinary;
  f.mnt_ns = kHostMntNs;
  f.cgroup = "0::/system.slice/kubelet.service\n";
  return f;
}

const HostProcFacts kHost{kHostMntNs, ""};

TEST(ChooseKubeletTest, OneCandidate) {
  struct Case {
    std::string name;
    std::function<void(ProcessFacts&, HostProcFacts&)> change;
    std::string rejected;  // "" : chosen
  };
  const std::string pod_uid = "0123abcd-4567-89ef-0123-456789abcdef";
  const std::vector<Case> cases = {
      {"real", [](ProcessFacts&, HostProcFacts&) {}, ""},
      {"another name", [](ProcessFacts& f, HostProcFacts&) { f.comm = "kubelet2"; },
       "its name is \"kubelet2\", not kubelet"},
      {"unreadable facts",
       [](ProcessFacts& f, HostProcFacts&) {
         f.unreadable = {"its executable (10/exe) cannot be read: permission denied",
                         "its cgroup (10/cgroup) is longer than 65536 bytes"};
       },
       "its executable (10/exe) cannot be read: permission denied; its cgroup (10/cgroup) is "
       "longer than 65536 bytes"},
      {"systemd pod slice",
       [&](ProcessFacts& f, HostProcFacts&) {
         f.cgroup = "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" +
                    pod_uid + ".slice/cri-containerd-1.scope\n";
       },
       "it runs in a pod's cgroup (/kubepods.slice/"},
      {"cgroupfs pod seen from another cgroup namespace",
       [&](ProcessFacts& f, HostProcFacts&) { f.cgroup = "0::/../../pod" + pod_uid + "/abc\n"; },
       "it runs in a pod's cgroup (/../../pod"},
      {"pod under a cgroup root named kubelet",
       [&](ProcessFacts& f, HostProcFacts&) {
         f.cgroup = "0::/kubelet.slice/kubelet-kubepods.slice/x.scope\n";
       },
       "pod's cgroup"},
      {"cgroup v1, pod in one hierarchy",
       [&](ProcessFacts& f, HostProcFacts&) {
         f.cgroup =
             "12:cpu,cpuacct:/system.slice/kubelet.service\n1:name=systemd:/kubepods/"
             "burstable/pod" +
             pod_uid + "/abc\n";
       },
       "pod's cgroup (/kubepods/burstable"},
      {"another mount namespace", [](ProcessFacts& f, HostProcFacts&) { f.mnt_ns = kOtherMntNs; },
       "its mount namespace mnt:[4026532999] is not the host's (mnt:[4026531840])"},
      {"host mount namespace unknown",
       [](ProcessFacts&, HostProcFacts& h) {
         h.mnt_ns.clear();
         h.problem = "/proc/1/ns/mnt cannot be read: permission denied";
       },
       "the host's mount namespace is unknown (/proc/1/ns/mnt cannot be read: permission denied)"},
      {"executable replaced since it started",
       [](ProcessFacts& f, HostProcFacts&) { f.exe = "/usr/bin/kubelet (deleted)"; },
       "its executable /usr/bin/kubelet (deleted) is not named kubelet"},
      {"executable not named kubelet",
       [](ProcessFacts& f, HostProcFacts&) { f.exe = "/usr/bin/sleep"; },
       "its executable /usr/bin/sleep is not named kubelet"},
      {"executable not a file", [](ProcessFacts& f, HostProcFacts&) { f.exe_file.reset(); },
       "is not an executable regular file"},
      {"executable without x bits",
       [](ProcessFacts& f, HostProcFacts&) { f.exe_file->mode = S_IFREG | 0644; },
       "is not an executable regular file"},
      {"the container's own /usr/bin/kubelet",
       [](ProcessFacts& f, HostProcFacts&) { f.exe_file->ino = 555; },
       "its executable is not the file at /usr/bin/kubelet on the host"},
      {"executable missing on the host",
       [](ProcessFacts& f, HostProcFacts&) { f.host_exe.reset(); },
       "its executable is not the file at /usr/bin/kubelet on the host"},
      {"executable found under PID 1's root",
       [](ProcessFacts& f, HostProcFacts&) {
         f.host_exe.reset();
         f.init_root_exe = kKubeletBinary;
       },
       ""},
      {"another file under PID 1's root",
       [](ProcessFacts& f, HostProcFacts&) {
         f.host_exe.reset();
         f.init_root_exe = FileIdentity{1, 101, S_IFREG | 0755};
       },
       "not the file at"},
      {"not in a kubelet cgroup, alone",
       [](ProcessFacts& f, HostProcFacts&) { f.cgroup = "0::/user.slice/session-4.scope\n"; }, ""},
      {"empty cgroup file", [](ProcessFacts& f, HostProcFacts&) { f.cgroup.clear(); }, ""},
  };
  for (const Case& c : cases) {
    ProcessFacts f = Real(10);
    HostProcFacts host = kHost;
    c.change(f, host);
    auto choice = ChooseKubelet({f}, host);
    ASSERT_TRUE(choice.ok()) << c.name << ": " << choice.status().message();
    if (c.rejected.empty()) {
      EXPECT_EQ(choice->pid, std::optional<int>(10)) << c.name;
      EXPECT_TRUE(choice->rejected.empty()) << c.name;
    } else {
      EXPECT_FALSE(choice->pid.has_value()) << c.name;
      ASSERT_EQ(choice->rejected.size(), 1u) << c.name;
      EXPECT_EQ(choice->rejected[0].pid, 10) << c.name;
      EXPECT_NE(choice->rejected[0].reason.find(c.rejected), std::string::npos)
          << c.name << ": " << choice->rejected[0].reason;
    }
  }
}

TEST(ChooseKubeletTest, SeveralCandidates) {
  struct Case {
    std::string name;
    std::vector<ProcessFacts> candidates;
    std::optional<int> chosen;
    std::vector<int> rejected;
  };
  ProcessFacts in_session = Real(20);
  in_session.cgroup = "0::/user.slice/session-4.scope\n";
  ProcessFacts child = Real(21);
  child.ppid = 10;
  ProcessFacts stranger_child = Real(22);  // its parent is no candidate
  stranger_child.ppid = 9;
  ProcessFacts other_ns = Real(5);
  other_ns.mnt_ns = kOtherMntNs;
  ProcessFacts named_otherwise = Real(6);
  named_otherwise.exe = "/opt/bin/kubelet-wrapper";
  const std::vector<Case> cases = {
      {"none", {}, std::nullopt, {}},
      {"decoys and the kubelet", {other_ns, Real(10), named_otherwise}, 10, {5, 6}},
      {"the one in kubelet.service", {in_session, Real(10)}, 10, {20}},
      {"a forked child", {Real(10), child}, 10, {21}},
      {"decoys only", {named_otherwise, other_ns}, std::nullopt, {5, 6}},
  };
  for (const Case& c : cases) {
    auto choice = ChooseKubelet(c.candidates, kHost);
    ASSERT_TRUE(choice.ok()) << c.name << ": " << choice.status().message();
    EXPECT_EQ(choice->pid, c.chosen) << c.name;
    std::vector<int> rejected;
    for (const auto& r : choice->rejected) rejected.push_back(r.pid);
    EXPECT_EQ(rejected, c.rejected) << c.name;
  }
  for (const auto& several : std::vector<std::vector<ProcessFacts>>{
           {Real(10), Real(30)}, {Real(10), stranger_child}, {in_session, in_session}}) {
    auto choice = ChooseKubelet(several, kHost);
    ASSERT_FALSE(choice.ok());
    EXPECT_EQ(choice.status().code(), StatusCode::kConflict);
    const std::string& m = choice.status().message();
    EXPECT_NE(m.find("several processes pass as the node's kubelet"), std::string::npos) << m;
    for (const ProcessFacts& c : several) {
      EXPECT_NE(m.find("pid " + std::to_string(c.pid) + " (executable /usr/bin/kubelet"),
                std::string::npos)
          << m;
    }
  }
}

// DetectKubelet over a fake proc root whose host root is the TempDir.
class DetectTest : public ::testing::Test {
 protected:
  StatusOr<Detection> Detect() {
    DetectOptions o;
    o.proc_root = proc_.path();
    return DetectKubelet(fs_, o);
  }
  // The pid detection settles on (0: none), failing the test on an error.
  int Chosen() {
    auto d = Detect();
    EXPECT_TRUE(d.ok()) << d.status().message();
    if (!d.ok()) return -1;
    last_warnings_.clear();
    for (const auto& w : d->warnings) last_warnings_ += w + "\n";
    return d->pid.value_or(0);
  }
  FakeProc::Process Kubelet(int pid) {
    FakeProc::Process p;
    p.pid = pid;
    p.argv = {"/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml"};
    return p;
  }

  TempDir t_;
  FakeProc proc_{t_};
  HostFs fs_{t_.path()};
  std::string last_warnings_;
};

TEST_F(DetectTest, TheRealKubeletAmongDecoys) {
  const std::string pod_cgroup =
      "0::/kubepods.slice/kubepods-burstable.slice/"
      "kubepods-burstable-pod0123abcd_4567_89ef_0123_456789abcdef.slice/cri-containerd-9.scope\n";
  proc_.Add({.pid = 11, .mnt_ns = kOtherMntNs});
  proc_.Add({.pid = 12, .cgroup = pod_cgroup});
  // The container's own binary: not under the host root at all...
  proc_.Add({.pid = 13, .exe = t_.Write("/containers/a/usr/bin/kubelet", "x", 0755)});
  // ...or a different file at the same path on the host.
  const std::string b = t_.Write("/containers/b/usr/bin/kubelet", "x", 0755);
  t_.Write(b, "the host's file", 0755);
  proc_.Add({.pid = 14, .exe = b});
  proc_.Add({.pid = 15, .exe = proc_.HostBinary("kubelet-wrapper")});
  proc_.Add(Kubelet(40));
  auto d = Detect();
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->pid, std::optional<int>(40));
  ASSERT_FALSE(d->process_flags.empty());
  EXPECT_EQ(d->files.config_file, "/var/lib/kubelet/config.yaml");
  for (const auto& w : d->warnings)
    EXPECT_EQ(w.find("kubelet was verified"), std::string::npos) << w;
  // Without the real one, each decoy is named with why it is not the kubelet.
  std::filesystem::remove_all(t_.Host(proc_.Dir(40)));
  EXPECT_EQ(Chosen(), 0);
  for (const char* needle :
       {"no running kubelet was verified (pid 11: its mount namespace mnt:[4026532999] is not "
        "the host's",
        "; pid 12: it runs in a pod's cgroup (/kubepods.slice/",
        "; pid 13: its executable is not the file at ",
        "; pid 14: its executable is not the file at ", "; pid 15: its executable ",
        "is not named kubelet",
        "); the kubelet's files and flags come from its systemd unit and env files only"}) {
    EXPECT_NE(last_warnings_.find(needle), std::string::npos) << needle << "\n" << last_warnings_;
  }
}

TEST_F(DetectTest, TwoRealLookingKubeletsAreRefused) {
  proc_.Add(Kubelet(40));
  proc_.Add(Kubelet(41));
  auto d = Detect();
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kConflict);
  EXPECT_NE(d.status().message().find("pid 40 ("), std::string::npos) << d.status().message();
  EXPECT_NE(d.status().message().find("pid 41 ("), std::string::npos) << d.status().message();
}

TEST_F(DetectTest, NoProcessNamedKubelet) {
  EXPECT_EQ(Chosen(), 0);
  EXPECT_NE(last_warnings_.find("no running kubelet was verified (no process is named kubelet "
                                "under " +
                                proc_.path() + ")"),
            std::string::npos)
      << last_warnings_;
}

TEST_F(DetectTest, ExecutableFoundUnderPidOnesRoot) {
  // The Job mounts only some host directories under the host root; PID 1's root is the whole
  // host filesystem. Here the binary is outside the host root, PID 1's root is this machine's /.
  TempDir elsewhere;
  const std::string bin = elsewhere.Write("/kubelet", "x", 0755);
  proc_.Add({.pid = 40, .exe = bin});
  EXPECT_EQ(Chosen(), 0);
  EXPECT_NE(last_warnings_.find("pid 40: its executable is not the file at " + bin),
            std::string::npos)
      << last_warnings_;
  std::filesystem::create_symlink("/", t_.Host(proc_.Dir(1) + "/root"));
  EXPECT_EQ(Chosen(), 40);
}

TEST_F(DetectTest, CommLimit) {
  proc_.Add(Kubelet(40));
  t_.Write(proc_.Dir(40) + "/comm", "kubelet" + std::string(kMaxCommBytes - 7, '\n'));
  EXPECT_EQ(Chosen(), 40);
  t_.Write(proc_.Dir(40) + "/comm", "kubelet" + std::string(kMaxCommBytes - 6, '\n'));
  EXPECT_EQ(Chosen(), 0);  // over the limit: not even a candidate
  EXPECT_NE(last_warnings_.find("no process is named kubelet"), std::string::npos);
}

TEST_F(DetectTest, CmdlineLimit) {
  proc_.Add(Kubelet(40));
  const std::string args = std::string("/usr/bin/kubelet") + '\0' +
                           "--config=/var/lib/kubelet/config.yaml" + '\0' + "--node-labels=";
  for (size_t size : {kMaxCmdlineBytes - 1, kMaxCmdlineBytes, kMaxCmdlineBytes + 1}) {
    t_.Write(proc_.Dir(40) + "/cmdline", args + std::string(size - args.size(), 'a'));
    auto d = Detect();
    ASSERT_TRUE(d.ok());
    if (size <= kMaxCmdlineBytes) {
      EXPECT_EQ(d->pid, std::optional<int>(40)) << size;
      EXPECT_EQ(d->files.config_file, "/var/lib/kubelet/config.yaml");
    } else {
      EXPECT_FALSE(d->pid.has_value());
      ASSERT_FALSE(d->warnings.empty());
      EXPECT_NE(d->warnings.back().find(
                    "pid 40: its command line (40/cmdline) is longer than 1048576 bytes"),
                std::string::npos)
          << d->warnings.back();
    }
  }
}

TEST_F(DetectTest, CgroupLimit) {
  proc_.Add(Kubelet(40));
  const std::string line = "0::/system.slice/kubelet.service\n";
  for (size_t size : {kMaxCgroupBytes - 1, kMaxCgroupBytes, kMaxCgroupBytes + 1}) {
    // Padding lines of another (v1) hierarchy.
    std::string text = line;
    while (text.size() < size) text += std::string(std::min<size_t>(size - text.size(), 80), '/');
    t_.Write(proc_.Dir(40) + "/cgroup", text);
    EXPECT_EQ(Chosen(), size <= kMaxCgroupBytes ? 40 : 0) << size;
  }
  EXPECT_NE(last_warnings_.find("pid 40: its cgroup (40/cgroup) is longer than 65536 bytes"),
            std::string::npos)
      << last_warnings_;
}

TEST_F(DetectTest, ProcStatLimit) {
  // The parent PID (from stat) tells the kubelet from a child it forked; a stat over its limit
  // leaves the parent unknown, and two candidates are then refused.
  proc_.Add(Kubelet(40));
  FakeProc::Process child = Kubelet(41);
  child.ppid = 40;
  proc_.Add(child);
  const std::string head = "41 (kubelet) S 40 1 1 0 -1";
  for (size_t size : {kMaxProcStatBytes - 1, kMaxProcStatBytes, kMaxProcStatBytes + 1}) {
    t_.Write(proc_.Dir(41) + "/stat", head + std::string(size - head.size(), ' '));
    auto d = Detect();
    if (size <= kMaxProcStatBytes) {
      ASSERT_TRUE(d.ok()) << size << ": " << d.status().message();
      EXPECT_EQ(d->pid, std::optional<int>(40));
    } else {
      EXPECT_EQ(d.status().code(), StatusCode::kConflict);
    }
  }
}

TEST_F(DetectTest, MountNamespaceLinkLimit) {
  proc_.Add(Kubelet(40));
  for (size_t size : {kMaxNsLinkBytes - 1, kMaxNsLinkBytes, kMaxNsLinkBytes + 1}) {
    const std::string ns = "mnt:[" + std::string(size - 6, '7') + "]";
    for (int pid : {1, 40}) {
      std::filesystem::remove(t_.Host(proc_.Dir(pid) + "/ns/mnt"));
      std::filesystem::create_symlink(ns, t_.Host(proc_.Dir(pid) + "/ns/mnt"));
    }
    EXPECT_EQ(Chosen(), size <= kMaxNsLinkBytes ? 40 : 0) << size;
  }
  EXPECT_NE(last_warnings_.find("is longer than 64 bytes"), std::string::npos) << last_warnings_;
}

TEST_F(DetectTest, ExecutableLinkLimit) {
  // A symlink cannot hold more than PATH_MAX - 1 bytes, the limit itself: at and under it the
  // link is read (and then found not to lead to the host's kubelet).
  proc_.Add(Kubelet(40));
  for (size_t size : {kMaxExeLinkBytes - 1, kMaxExeLinkBytes}) {
    const std::string target = "/" + std::string(size - 9, 'd') + "/kubelet";
    ASSERT_EQ(target.size(), size);
    std::filesystem::remove(t_.Host(proc_.Dir(40) + "/exe"));
    std::filesystem::create_symlink(target, t_.Host(proc_.Dir(40) + "/exe"));
    EXPECT_EQ(Chosen(), 0);
    EXPECT_EQ(last_warnings_.find("longer than"), std::string::npos) << last_warnings_;
    EXPECT_NE(last_warnings_.find("pid 40: its executable (40/exe) cannot be read"),
              std::string::npos)
        << last_warnings_;
  }
}

TEST_F(DetectTest, CandidateLimit) {
  for (int pid = 100; pid < 100 + static_cast<int>(kMaxKubeletCandidates) - 1; ++pid) {
    t_.Write(proc_.Dir(pid) + "/comm", "kubelet\n");
  }
  proc_.Add(Kubelet(40));
  EXPECT_EQ(Chosen(), 40);  // exactly the limit
  EXPECT_EQ(Detect()->warnings.size(), 0u);
  t_.Write(proc_.Dir(99) + "/comm", "kubelet\n");
  auto d = Detect();
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(d.status().message().find("more than 64 processes are named kubelet"),
            std::string::npos);
}

TEST_F(DetectTest, ManyRejectionsAreSummarised) {
  for (int pid = 100; pid < 120; ++pid) t_.Write(proc_.Dir(pid) + "/comm", "kubelet\n");
  EXPECT_EQ(Chosen(), 0);
  EXPECT_NE(last_warnings_.find("pid 107: "), std::string::npos);
  EXPECT_EQ(last_warnings_.find("pid 108: "), std::string::npos);
  EXPECT_NE(last_warnings_.find("; and 12 more)"), std::string::npos) << last_warnings_;
}

}  // namespace
}  // namespace kpc::agent
