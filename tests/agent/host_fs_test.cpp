#include "agent/host_fs.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

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

TEST(HostFsTest, LinksToDotAndDotDotResolveInsideTheRoot) {
  TempDir t;
  t.Write("/etc/kubernetes/real.conf", "real");
  std::filesystem::create_symlink("..", t.Host("/etc/up"));
  std::filesystem::create_symlink(".", t.Host("/etc/self"));
  HostFs fs(t.path());
  auto up = fs.Resolve("/etc/up");
  ASSERT_TRUE(up.ok()) << up.status().message();
  EXPECT_EQ(*up, t.path());
  auto self = fs.Resolve("/etc/self");
  ASSERT_TRUE(self.ok()) << self.status().message();
  EXPECT_EQ(*self, t.Host("/etc"));
  EXPECT_TRUE(fs.IsDirectory("/etc/self"));
  auto text = fs.ReadFile("/etc/up/etc/up/etc/self/self/kubernetes/real.conf");
  ASSERT_TRUE(text.ok()) << text.status().message();
  EXPECT_EQ(*text, "real");
}

TEST(HostFsTest, SymlinkCountLimit) {
  TempDir t;
  t.Write("/etc/real", "real");
  // /etc/l0 -> /etc/l1 -> ... -> /etc/lN -> /etc/real: N + 1 links.
  auto chain = [&](int links) {
    std::filesystem::remove_all(t.Host("/etc/chain"));
    std::filesystem::create_directories(t.Host("/etc/chain"));
    for (int i = 0; i < links; ++i) {
      std::string next = i + 1 == links ? "/etc/real" : "/etc/chain/l" + std::to_string(i + 1);
      std::filesystem::create_symlink(next, t.Host("/etc/chain/l" + std::to_string(i)));
    }
  };
  HostFs fs(t.path());
  for (int links : {39, 40}) {
    chain(links);
    auto r = fs.ReadFile("/etc/chain/l0");
    ASSERT_TRUE(r.ok()) << links << ": " << r.status().message();
    EXPECT_EQ(*r, "real");
  }
  chain(41);
  auto r = fs.ReadFile("/etc/chain/l0");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("too many levels of symbolic links"), std::string::npos);
}

TEST(HostFsTest, ReadFileLimit) {
  TempDir t;
  HostFs fs(t.path());
  for (size_t size : {size_t{16} << 20, (size_t{16} << 20) + 1}) {
    t.Write("/etc/big", std::string(size, 'x'));
    auto r = fs.ReadFile("/etc/big");
    if (size <= size_t{16} << 20) {
      ASSERT_TRUE(r.ok()) << r.status().message();
      EXPECT_EQ(r->size(), size);
    } else {
      ASSERT_FALSE(r.ok());
      EXPECT_NE(r.status().message().find("larger than 16 MiB"), std::string::npos);
    }
  }
}

TEST(HostFsTest, ListDirLimitAndOrder) {
  TempDir t;
  std::filesystem::create_directories(t.Host("/etc/many"));
  for (int i = 4095; i >= 0; --i) {
    std::ofstream(t.Host("/etc/many/f" + std::to_string(100000 + i)));
  }
  HostFs fs(t.path());
  auto names = fs.ListDir("/etc/many");
  ASSERT_TRUE(names.ok()) << names.status().message();
  ASSERT_EQ(names->size(), 4096u);
  EXPECT_EQ(names->front(), "f100000");
  EXPECT_EQ(names->back(), "f104095");
  std::ofstream(t.Host("/etc/many/one-more"));
  EXPECT_EQ(fs.ListDir("/etc/many").status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(fs.ListDir("/etc/none").status().code(), StatusCode::kNotFound);
}

TEST(HostFsTest, StatIdentifiesTheFile) {
  TempDir t;
  const std::string host = t.Write("/usr/bin/kubelet", "x", 0755);
  std::filesystem::create_symlink("/usr/bin/kubelet", t.Host("/usr/bin/link"));
  HostFs fs(t.path());
  struct stat st {};
  ASSERT_EQ(::stat(host.c_str(), &st), 0);
  for (const char* p : {"/usr/bin/kubelet", "/usr/bin/link"}) {
    auto id = fs.Stat(p);
    ASSERT_TRUE(id.ok()) << id.status().message();
    EXPECT_EQ(id->dev, st.st_dev);
    EXPECT_EQ(id->ino, st.st_ino);
    EXPECT_EQ(id->mode, st.st_mode);
  }
  EXPECT_EQ(fs.Stat("/usr/bin/none").status().code(), StatusCode::kNotFound);
}

TEST(HostFsTest, OnlyRegularFilesAreChmodded) {
  TempDir t;
  std::filesystem::create_directories(t.Host("/etc/kubernetes/dir"));
  ASSERT_EQ(::mkfifo(t.Host("/etc/kubernetes/fifo").c_str(), 0644), 0);
  HostFs fs(t.path());
  for (const char* p : {"/etc/kubernetes/dir", "/etc/kubernetes/fifo"}) {
    Status s = fs.Chmod(p, 0600);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << p;
    EXPECT_NE(s.message().find("not a regular file"), std::string::npos) << s.message();
    EXPECT_EQ(fs.Chown(p, 1, 1).code(), StatusCode::kInvalidArgument) << p;
    // Reading a FIFO without a writer neither blocks nor succeeds.
    EXPECT_FALSE(fs.ReadFile(p).ok()) << p;
  }
  EXPECT_EQ(fs.Facts("/etc/kubernetes/dir").mode, 0755u);
}

TEST(HostFsTest, LinksToOutsideTheRootAreFollowedInsideIt) {
  TempDir t;
  const std::string outside = t.Write("/outside/secret", "secret", 0644);
  const std::string root = t.Host("/host");
  std::filesystem::create_directories(root + "/etc/kubernetes");
  std::filesystem::create_symlink(outside, root + "/etc/kubernetes/abs.conf");
  std::filesystem::create_symlink("../../../outside/secret", root + "/etc/kubernetes/rel.conf");
  std::filesystem::create_symlink(t.Host("/outside"), root + "/etc/kubernetes/dir");
  HostFs fs(root);
  for (const char* p :
       {"/etc/kubernetes/abs.conf", "/etc/kubernetes/rel.conf", "/etc/kubernetes/dir/secret"}) {
    EXPECT_EQ(fs.Chmod(p, 0600).code(), StatusCode::kNotFound) << p;
    EXPECT_EQ(fs.Chown(p, 1234, 1234).code(), StatusCode::kNotFound) << p;
    EXPECT_EQ(fs.ReadFile(p).status().code(), StatusCode::kNotFound) << p;
    EXPECT_FALSE(fs.WriteFileAtomic(p, "overwritten", true).ok()) << p;
  }
  struct stat st {};
  ASSERT_EQ(::stat(outside.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(t.Read("/outside/secret"), "secret");
  // The same link targets inside the root: followed there.
  t.Write("/host/outside/secret", "inside", 0644);
  ASSERT_TRUE(fs.Chmod("/etc/kubernetes/rel.conf", 0600).ok());
  ASSERT_TRUE(fs.WriteFileAtomic("/etc/kubernetes/rel.conf", "edited", true).ok());
  EXPECT_EQ(t.Read("/host/outside/secret"), "edited");
  EXPECT_EQ(t.Read("/host/outside/secret.kpc-backup"), "inside");
  EXPECT_TRUE(std::filesystem::is_symlink(root + "/etc/kubernetes/rel.conf"));
  ASSERT_EQ(::stat((root + "/outside/secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(t.Read("/outside/secret"), "secret");
}

// Exchanges two names atomically; false when the filesystem cannot.
bool Exchange(const std::string& a, const std::string& b) {
  return ::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) == 0;
}

TEST(HostFsTest, SymlinksSwappedInWhileInUseNeverLeadOutside) {
  TempDir t;
  const std::string outside = t.Write("/outside/secret", "secret", 0644);
  const std::string root = t.Host("/host");
  const std::string dir = root + "/etc/kubernetes";
  const std::string file = dir + "/kubelet.conf";
  t.Write("/host/etc/kubernetes/kubelet.conf", "conf", 0644);
  // The swapper exchanges the file with symlinks to the outside file (absolute, and relative
  // climbing out), and the directory with a symlink to the outside directory.
  const std::string link_abs = dir + "/.abs", link_rel = dir + "/.rel";
  const std::string dir_link = root + "/etc/.kubernetes";
  std::filesystem::create_symlink(outside, link_abs);
  std::filesystem::create_symlink("../../../outside/secret", link_rel);
  std::filesystem::create_symlink(t.Host("/outside"), dir_link);
  if (!Exchange(link_abs, file) || !Exchange(link_abs, file)) {
    GTEST_SKIP() << "renameat2(RENAME_EXCHANGE) is not supported here";
  }
  std::atomic<bool> stop{false};
  std::thread swapper([&] {
    for (unsigned i = 0; !stop.load(); ++i) {
      const std::string& link = (i & 1) ? link_abs : link_rel;
      Exchange(link, file);
      Exchange(link, file);
      if (i % 4 == 0) {
        Exchange(dir_link, dir);
        Exchange(dir_link, dir);
      }
    }
  });
  HostFs fs(root);
  int changed = 0;
  bool leaked = false;
  for (int i = 0; i < 20000; ++i) {
    if (fs.Chmod("/etc/kubernetes/kubelet.conf", (i & 1) ? 0600 : 0640).ok()) ++changed;
    (void)fs.Chown("/etc/kubernetes/kubelet.conf", 1234, 1234);
    auto text = fs.ReadFile("/etc/kubernetes/kubelet.conf");
    leaked = leaked || (text.ok() && *text == "secret");
    if (i % 64 == 0) (void)fs.WriteFileAtomic("/etc/kubernetes/other.conf", "x", true);
  }
  stop = true;
  swapper.join();
  EXPECT_GT(changed, 0);
  EXPECT_FALSE(leaked);
  struct stat st {};
  ASSERT_EQ(::stat(outside.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 0u);
  EXPECT_EQ(t.Read("/outside/secret"), "secret");
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(t.Host("/outside"))) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

}  // namespace
}  // namespace kpc::agent
