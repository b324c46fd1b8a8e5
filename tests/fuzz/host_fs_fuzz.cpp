// Fuzz target: node paths resolved under a host root (agent/host_fs.h), on a small tree the
// input builds: directories, files and symlinks with any target (absolute, relative, "..",
// loops; "@" in a target stands for the absolute path of the sandbox around the host root,
// so that links can aim at real paths outside it).
// Properties: no crash or sanitizer report; a resolved path is the host root or under it,
// and what the OS finds there — the path itself, or its directory when the last segment is
// missing — is inside the host root once every symlink is followed; it ends in no symlink; and
// reading, auditing, writing (atomically, with backups), chmod and chown through HostFs never
// create, change or remove anything outside the host root.
// Input: lines of "d REL" (directory), "f REL [CONTENT]" (file; "\n" in CONTENT is a newline),
// "l REL TARGET" (symlink), then operations on node paths: "r PATH" (resolve), "x PATH" (read,
// exists, facts), "w PATH" (write), "b PATH" (write with backup), "m PATH" (chmod 0600),
// "o PATH" (chown to root). At most 32 lines.

#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>

#include "agent/host_fs.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/temp_tree.h"

namespace {

namespace agent = kpc::agent;

// Everything in the sandbox outside the host root: path -> type, mode, owner, size, content.
std::map<std::string, std::string>* g_snapshot = nullptr;
std::string g_root;

int Record(const char* path, const struct stat* st, int, struct FTW*) {
  const std::string p = path;
  if (p == g_root || p.rfind(g_root + "/", 0) == 0) return 0;
  std::string facts = std::to_string(st->st_mode) + " " + std::to_string(st->st_uid) + ":" +
                      std::to_string(st->st_gid) + " " + std::to_string(st->st_size);
  if (S_ISREG(st->st_mode)) {
    char buf[64] = {};
    FILE* f = std::fopen(path, "rb");
    if (f != nullptr) {
      facts += " " + std::string(buf, std::fread(buf, 1, sizeof buf, f));
      std::fclose(f);
    }
  }
  (*g_snapshot)[p] = facts;
  return 0;
}

std::map<std::string, std::string> Snapshot(const std::string& sandbox) {
  std::map<std::string, std::string> out;
  g_snapshot = &out;
  ::nftw(sandbox.c_str(), Record, 16, FTW_PHYS);
  g_snapshot = nullptr;
  return out;
}

std::string RealPath(const std::string& p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) != nullptr ? std::string(buf) : std::string();
}

bool Within(const std::string& path, const std::string& root) {
  return path == root || path.rfind(root + "/", 0) == 0;
}

void CheckResolved(const agent::HostFs& fs, const std::string& real_root, std::string_view node) {
  auto host = fs.Resolve(node);
  if (!host.ok()) return;
  const std::string& h = *host;
  const std::string what = std::string(node) + " -> " + h;
  FUZZ_CHECK(Within(h, fs.root()), what + ": not under " + fs.root());
  struct stat st {};
  if (::lstat(h.c_str(), &st) == 0) {
    FUZZ_CHECK(!S_ISLNK(st.st_mode), what + ": ends in a symlink");
    FUZZ_CHECK(Within(RealPath(h), real_root), what + ": the OS finds " + RealPath(h));
  } else {
    const std::string dir = h.substr(0, h.rfind('/'));
    const std::string real = RealPath(dir);
    FUZZ_CHECK(real.empty() || Within(real, real_root), what + ": its directory is " + real);
  }
}

std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == 'n') {
      out += '\n';
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Whether `rel` may name a new entry: relative, no "..", a real last segment.
bool UsableName(std::string_view rel) {
  if (rel.empty() || rel.size() > 200 || rel.front() == '/' || rel.find('\0') != rel.npos)
    return false;
  size_t slash = rel.rfind('/');
  std::string_view last = slash == rel.npos ? rel : rel.substr(slash + 1);
  return !last.empty() && last != "." && last != "..";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = kpc::fuzz::AsText(data, size);
  const std::string sandbox = kpc::fuzz::ScratchDir() + "/sandbox";
  const std::string root = sandbox + "/root";
  kpc::fuzz::RemoveTree(sandbox);
  ::mkdir(sandbox.c_str(), 0755);
  ::mkdir(root.c_str(), 0755);
  kpc::fuzz::WriteTreeFile(sandbox, "outside/secret", "secret\n");
  kpc::fuzz::WriteTreeFile(sandbox, "outside/dir/kubelet.conf", "outside\n");
  g_root = root;
  const std::string real_root = RealPath(root);

  // Build the tree first (its lines, in order), then snapshot what is outside the root.
  size_t pos = 0;
  std::vector<std::pair<char, std::string>> ops;
  for (int n = 0; pos < text.size() && n < 32; ++n) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == text.npos ? text.npos : nl - pos);
    pos = nl == text.npos ? text.size() : nl + 1;
    if (line.size() < 3 || line[1] != ' ') continue;
    const char op = line[0];
    std::string_view arg = line.substr(2);
    if (op == 'd' || op == 'f' || op == 'l') {
      size_t sp = arg.find(' ');
      std::string_view rel = arg.substr(0, sp);
      std::string_view rest = sp == arg.npos ? std::string_view() : arg.substr(sp + 1);
      if (!UsableName(rel) || !kpc::fuzz::MakeParents(root, rel)) continue;
      const std::string path = root + "/" + std::string(rel);
      if (op == 'd') {
        ::mkdir(path.c_str(), 0755);
      } else if (op == 'f') {
        kpc::fuzz::WriteTreeFile(root, rel, Unescape(rest));
      } else if (!rest.empty() && rest.find('\0') == rest.npos) {
        std::string target;
        for (char c : rest) target += c == '@' ? sandbox : std::string(1, c);
        ::symlink(target.c_str(), path.c_str());
      }
    } else {
      ops.emplace_back(op, std::string(arg));
    }
  }
  const auto before = Snapshot(sandbox);

  agent::HostFs fs(root);
  for (const auto& [op, node] : ops) {
    switch (op) {
      case 'r':
        CheckResolved(fs, real_root, node);
        break;
      case 'x':
        (void)fs.ReadFile(node);
        (void)fs.Exists(node);
        (void)fs.IsDirectory(node);
        (void)fs.Facts(node);
        break;
      case 'w':
      case 'b':
        (void)fs.WriteFileAtomic(node, "written\n", op == 'b');
        CheckResolved(fs, real_root, node);
        break;
      case 'm':
        (void)fs.Chmod(node, 0600);
        break;
      case 'o':
        (void)fs.Chown(node, 0, 0);
        break;
      default:
        break;
    }
  }
  const auto after = Snapshot(sandbox);
  if (after != before) {
    std::string diff;
    for (const auto& [p, f] : before) {
      auto it = after.find(p);
      if (it == after.end())
        diff += "removed " + p + "\n";
      else if (it->second != f)
        diff += "changed " + p + ": " + f + " -> " + it->second + "\n";
    }
    for (const auto& [p, f] : after) {
      if (before.count(p) == 0) diff += "created " + p + "\n";
    }
    FUZZ_CHECK(false, "outside the host root:\n" + diff);
  }
  return 0;
}
