#include "agent/host_fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "tests/agent/test_util.h"

namespace kpc::agent {
namespace {

using testing::TempDir;

TEST(HostFsTest, RejectsRelativeAndDotDotPaths) {
  EXPECT_FALSE(ValidateNodePath("etc/kubernetes").ok());
  EXPECT_FALSE(ValidateNodePath("/etc/../root/.ssh").ok());
  EXPECT_FALSE(ValidateNodePath("/etc/./x").ok());
  EXPECT_FALSE(ValidateNodePath("").ok());
  EXPECT_TRUE(ValidateNodePath("/etc/kubernetes/kubelet.conf").ok());
  TempDir t;
  HostFs fs(t.path());
  EXPECT_FALSE(fs.Resolve("/etc/../../x").ok());
}

TEST(HostFsTest, SymlinksStayUnderTheHostRoot) {
  TempDir t;
  t.Write("/etc/kubernetes/real.conf", "real");
  std::filesystem::create_directories(t.Host("/var/lib/kubelet"));
  // An absolute link target is a node path: it resolves under the host root, not on this machine.
  std::filesystem::create_symlink("/etc/kubernetes/real.conf", t.Host("/var/lib/kubelet/abs.conf"));
  // ".." never climbs above the host root.
  std::filesystem::create_symlink("../../../../../../../etc/kubernetes/real.conf",
                                  t.Host("/var/lib/kubelet/rel.conf"));
  std::filesystem::create_symlink("/etc", t.Host("/var/lib/kubelet/etcdir"));
  HostFs fs(t.path());
  for (const char* p : {"/var/lib/kubelet/abs.conf", "/var/lib/kubelet/rel.conf",
                        "/var/lib/kubelet/etcdir/kubernetes/real.conf"}) {
    auto r = fs.Resolve(p);
    ASSERT_TRUE(r.ok()) << p << ": " << r.status().message();
    EXPECT_EQ(*r, t.Host("/etc/kubernetes/real.conf")) << p;
    auto text = fs.ReadFile(p);
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(*text, "real");
  }
  // A link to a host path that does not exist under the root does not reach the real one.
  std::filesystem::create_symlink("/etc/hostname", t.Host("/var/lib/kubelet/escape"));
  EXPECT_EQ(fs.ReadFile("/var/lib/kubelet/escape").status().code(), StatusCode::kNotFound);
}

TEST(HostFsTest, SymlinkLoopsAreErrors) {
  TempDir t;
  std::filesystem::create_directories(t.Host("/etc"));
  std::filesystem::create_symlink("/etc/b", t.Host("/etc/a"));
  std::filesystem::create_symlink("/etc/a", t.Host("/etc/b"));
  HostFs fs(t.path());
  auto r = fs.Resolve("/etc/a");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("symbolic links"), std::string::npos);
}

TEST(HostFsTest, AtomicWriteKeepsModeAndOwnerAndBacksUpOnce) {
  TempDir t;
  std::string host = t.Write("/var/lib/kubelet/config.yaml", "v1\n", 0640);
  ASSERT_EQ(::chown(host.c_str(), 1000, 1001), 0);
  HostFs fs(t.path());
  ASSERT_TRUE(fs.WriteFileAtomic("/var/lib/kubelet/config.yaml", "v2\n", true).ok());
  EXPECT_EQ(t.Read("/var/lib/kubelet/config.yaml"), "v2\n");
  EXPECT_EQ(t.Read("/var/lib/kubelet/config.yaml.kpc-backup"), "v1\n");
  struct stat st {};
  ASSERT_EQ(::stat(host.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 1001u);
  ASSERT_EQ(::stat((host + ".kpc-backup").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  // The backup keeps the file as it was before the agent first changed it.
  ASSERT_TRUE(fs.WriteFileAtomic("/var/lib/kubelet/config.yaml", "v3\n", true).ok());
  EXPECT_EQ(t.Read("/var/lib/kubelet/config.yaml.kpc-backup"), "v1\n");
  // No temporary files are left behind.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(t.Host("/var/lib/kubelet"))) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 2);
}

TEST(HostFsTest, NewFilesAreRootOwnedWithTheCreateMode) {
  TempDir t;
  std::filesystem::create_directories(t.Host("/etc/kubernetes"));
  HostFs fs(t.path());
  ASSERT_TRUE(fs.WriteFileAtomic("/etc/kubernetes/new.yaml", "x: 1\n", true, 0600).ok());
  auto f = fs.Facts("/etc/kubernetes/new.yaml");
  EXPECT_TRUE(f.exists);
  EXPECT_EQ(f.mode, 0600u);
  EXPECT_EQ(f.uid, 0u);
  EXPECT_FALSE(t.Exists("/etc/kubernetes/new.yaml.kpc-backup"));
}

TEST(HostFsTest, FactsUseTheHostsUserAndGroupNames) {
  TempDir t;
  t.Write("/etc/passwd",
          "root:x:0:0:root:/root:/bin/bash\n# comment\nkube:x:1001:1002::/home/kube:/bin/sh\nbad "
          "line\n");
  t.Write("/etc/group", "root:x:0:\nkube:x:1002:\n");
  std::string host = t.Write("/etc/kubernetes/kubelet.conf", "x", 0644);
  ASSERT_EQ(::chown(host.c_str(), 1001, 1002), 0);
  HostFs fs(t.path());
  auto f = fs.Facts("/etc/kubernetes/kubelet.conf");
  EXPECT_TRUE(f.exists);
  EXPECT_EQ(f.mode, 0644u);
  EXPECT_EQ(f.owner, "kube");
  EXPECT_EQ(f.group, "kube");
  EXPECT_EQ(fs.LookupUser("kube"), std::optional<uid_t>(1001));
  EXPECT_EQ(fs.LookupGroup("kube"), std::optional<gid_t>(1002));
  EXPECT_EQ(fs.LookupUser("42"), std::optional<uid_t>(42));
  EXPECT_FALSE(fs.LookupUser("nobody-here").has_value());
  EXPECT_FALSE(fs.Facts("/etc/kubernetes/missing").exists);
  EXPECT_TRUE(fs.Facts("/etc/kubernetes/missing").error.empty());
  EXPECT_FALSE(fs.Facts("/no/such/dir/file").exists);
}

}  // namespace
}  // namespace kpc::agent
