#include "agent/host_fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <vector>

#include "agent/result.h"

namespace kpc::agent {
namespace {

constexpr int kMaxSymlinks = 40;  // as Linux's path resolution
constexpr size_t kMaxFileBytes = 16 * 1024 * 1024;

std::vector<std::string> SplitPath(std::string_view p) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < p.size()) {
    while (i < p.size() && p[i] == '/') ++i;
    size_t start = i;
    while (i < p.size() && p[i] != '/') ++i;
    if (i > start) out.emplace_back(p.substr(start, i - start));
  }
  return out;
}

std::string Join(const std::string& root, const std::vector<std::string>& parts) {
  std::string out = root;
  for (const auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string BaseOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool AllDigits(std::string_view s) {
  if (s.empty() || s.size() > 10) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

Status ErrnoStatus(int err, const std::string& what) {
  StatusCode code = err == ENOENT ? StatusCode::kNotFound
                    : (err == EACCES || err == EPERM || err == EROFS)
                        ? StatusCode::kPermissionDenied
                        : StatusCode::kInternal;
  return Status(code, what + ": " + ErrnoText(err));
}

// Writes all of `data` to fd.
bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open " + dir);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some filesystems do not support fsync on directories; the rename has happened regardless.
  if (rc != 0 && err != EINVAL && err != EROFS) return ErrnoStatus(err, "fsync " + dir);
  return Status::Ok();
}

// Creates `host_path` atomically with `content`, mode and owner.
Status ReplaceAtomic(const std::string& host_path, std::string_view content, mode_t mode, uid_t uid,
                     gid_t gid, const std::string& display) {
  const std::string dir = DirOf(host_path);
  std::string tmpl = dir + "/." + BaseOf(host_path) + ".kpc-tmp-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = ::mkstemp(buf.data());
  if (fd < 0)
    return ErrnoStatus(errno,
                       "cannot write " + display + " (creating a temporary file in its directory)");
  const std::string tmp(buf.data());
  auto fail = [&](const std::string& what) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, "cannot write " + display + " (" + what + ")");
  };
  if (!WriteAll(fd, content)) return fail("write");
  if (::fchmod(fd, mode) != 0) return fail("chmod");
  if (::fchown(fd, uid, gid) != 0) return fail("chown");
  if (::fsync(fd) != 0) return fail("fsync");
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, "cannot write " + display + " (close)");
  }
  if (::rename(tmp.c_str(), host_path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, "cannot write " + display + " (rename)");
  }
  return FsyncDir(dir);
}

}  // namespace

std::string ErrnoText(int err) {
  std::string s = std::strerror(err);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

Status ValidateNodePath(std::string_view path) {
  if (path.empty() || path[0] != '/') {
    return InvalidArgument("path \"" + std::string(path) +
                           "\" must be absolute (as seen on the node)");
  }
  for (const auto& seg : SplitPath(path)) {
    if (seg == ".." || seg == ".") {
      return InvalidArgument("path \"" + std::string(path) +
                             "\" must not contain \".\" or \"..\" segments");
    }
  }
  if (path.find('\0') != std::string_view::npos) return InvalidArgument("path contains a NUL byte");
  return Status::Ok();
}

HostFs::HostFs(std::string host_root) : root_(std::move(host_root)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
  if (root_ == "/") root_.clear();  // node paths are host paths
}

StatusOr<std::string> HostFs::Resolve(std::string_view node_path) const {
  Status v = ValidateNodePath(node_path);
  if (!v.ok()) return v;
  std::vector<std::string> todo = SplitPath(node_path);
  std::vector<std::string> done;  // resolved segments, no symlinks among them
  int links = 0;
  size_t i = 0;
  while (i < todo.size()) {
    const std::string seg = todo[i];
    if (seg == ".") {
      ++i;
      continue;
    }
    if (seg == "..") {  // only from link targets: never above the host root
      if (!done.empty()) done.pop_back();
      ++i;
      continue;
    }
    std::string candidate = root_;
    for (const auto& d : done) candidate += "/" + d;
    candidate += "/" + seg;
    struct stat st {};
    if (::lstat(candidate.c_str(), &st) != 0) {
      int err = errno;
      if (err == ENOENT && i + 1 == todo.size()) {
        done.push_back(seg);  // a missing last segment: where the file would be
        ++i;
        continue;
      }
      return ErrnoStatus(err, std::string(node_path));
    }
    if (S_ISLNK(st.st_mode)) {
      if (++links > kMaxSymlinks)
        return InvalidArgument(std::string(node_path) + ": too many levels of symbolic links");
      std::vector<char> target(4096);
      ssize_t n = ::readlink(candidate.c_str(), target.data(), target.size() - 1);
      if (n < 0) return ErrnoStatus(errno, std::string(node_path));
      std::string t(target.data(), static_cast<size_t>(n));
      std::vector<std::string> rest(todo.begin() + static_cast<std::ptrdiff_t>(i) + 1, todo.end());
      std::vector<std::string> next = SplitPath(t);
      if (!t.empty() && t[0] == '/') done.clear();  // absolute: from the host root
      next.insert(next.end(), rest.begin(), rest.end());
      todo = std::move(next);
      i = 0;
      continue;
    }
    if (i + 1 < todo.size() && !S_ISDIR(st.st_mode)) {
      return ErrnoStatus(ENOTDIR, std::string(node_path));
    }
    done.push_back(seg);
    ++i;
  }
  return Join(root_, done);
}

StatusOr<std::string> HostFs::ReadFile(std::string_view node_path) const {
  auto host = Resolve(node_path);
  if (!host.ok()) return host.status();
  int fd = ::open(host->c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return ErrnoStatus(errno, std::string(node_path));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument(std::string(node_path) + " is not a regular file");
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return ErrnoStatus(err, std::string(node_path));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxFileBytes) {
      ::close(fd);
      return InvalidArgument(std::string(node_path) + " is larger than 16 MiB; not a kubelet file");
    }
  }
  ::close(fd);
  return out;
}

bool HostFs::Exists(std::string_view node_path) const {
  auto host = Resolve(node_path);
  if (!host.ok()) return false;
  struct stat st {};
  return ::stat(host->c_str(), &st) == 0;
}

bool HostFs::IsDirectory(std::string_view node_path) const {
  auto host = Resolve(node_path);
  if (!host.ok()) return false;
  struct stat st {};
  return ::stat(host->c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

policy::FileFacts HostFs::Facts(std::string_view node_path) {
  policy::FileFacts f;
  auto host = Resolve(node_path);
  if (!host.ok()) {
    if (host.status().code() == StatusCode::kNotFound) return f;  // a missing directory
    f.error = host.status().message();
    return f;
  }
  struct stat st {};
  if (::stat(host->c_str(), &st) != 0) {
    int err = errno;
    if (err != ENOENT && err != ENOTDIR) f.error = ErrnoText(err);
    return f;
  }
  f.exists = true;
  f.mode = st.st_mode & 07777;
  f.uid = st.st_uid;
  f.gid = st.st_gid;
  f.owner = UserName(st.st_uid);
  f.group = GroupName(st.st_gid);
  return f;
}

Status HostFs::WriteFileAtomic(std::string_view node_path, std::string_view content, bool backup,
                               uint32_t create_mode) {
  auto host = Resolve(node_path);
  if (!host.ok()) return host.status();
  const std::string display(node_path);
  struct stat st {};
  bool exists = ::stat(host->c_str(), &st) == 0;
  if (exists && !S_ISREG(st.st_mode)) return InvalidArgument(display + " is not a regular file");
  mode_t mode = exists ? (st.st_mode & 07777) : create_mode;
  uid_t uid = exists ? st.st_uid : 0;
  gid_t gid = exists ? st.st_gid : 0;
  if (exists && backup) {
    const std::string bak = *host + std::string(kBackupSuffix);
    struct stat bst {};
    if (::lstat(bak.c_str(), &bst) != 0) {
      auto original = ReadFile(node_path);
      if (!original.ok()) return original.status();
      Status s =
          ReplaceAtomic(bak, *original, mode, uid, gid, display + std::string(kBackupSuffix));
      if (!s.ok()) return s;
    }
  }
  return ReplaceAtomic(*host, content, mode, uid, gid, display);
}

Status HostFs::Chmod(std::string_view node_path, uint32_t mode) {
  auto host = Resolve(node_path);
  if (!host.ok()) return host.status();
  if (::chmod(host->c_str(), mode) != 0)
    return ErrnoStatus(errno, "chmod " + std::string(node_path));
  return Status::Ok();
}

Status HostFs::Chown(std::string_view node_path, uid_t uid, gid_t gid) {
  auto host = Resolve(node_path);
  if (!host.ok()) return host.status();
  if (::chown(host->c_str(), uid, gid) != 0)
    return ErrnoStatus(errno, "chown " + std::string(node_path));
  return Status::Ok();
}

void HostFs::LoadTables() {
  if (tables_loaded_) return;
  tables_loaded_ = true;
  auto load = [&](const char* file, std::map<std::string, uint32_t, std::less<>>& by_name,
                  std::map<uint32_t, std::string>& by_id) {
    auto text = ReadFile(file);
    if (!text.ok()) return;
    size_t pos = 0;
    while (pos < text->size()) {
      size_t nl = text->find('\n', pos);
      std::string line = text->substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      pos = nl == std::string::npos ? text->size() : nl + 1;
      if (line.empty() || line[0] == '#') continue;
      // name:password:id:...
      size_t c1 = line.find(':');
      size_t c2 = c1 == std::string::npos ? c1 : line.find(':', c1 + 1);
      size_t c3 = c2 == std::string::npos ? c2 : line.find(':', c2 + 1);
      if (c2 == std::string::npos) continue;
      std::string name = line.substr(0, c1);
      std::string id =
          line.substr(c2 + 1, c3 == std::string::npos ? std::string::npos : c3 - c2 - 1);
      if (name.empty() || !AllDigits(id)) continue;
      uint64_t v = std::stoull(id);
      if (v > 0xffffffffULL) continue;
      by_name.emplace(name, static_cast<uint32_t>(v));
      by_id.emplace(static_cast<uint32_t>(v), name);  // the first name of an id wins, as getpwuid
    }
  };
  load("/etc/passwd", users_, uid_names_);
  load("/etc/group", groups_, gid_names_);
}

std::optional<uid_t> HostFs::LookupUser(std::string_view name_or_id) {
  if (AllDigits(name_or_id)) {
    uint64_t v = std::stoull(std::string(name_or_id));
    if (v <= 0xfffffffeULL) return static_cast<uid_t>(v);
    return std::nullopt;
  }
  LoadTables();
  auto it = users_.find(name_or_id);
  if (it != users_.end()) return it->second;
  if (name_or_id == "root") return 0;  // a host without /etc/passwd still has root
  return std::nullopt;
}

std::optional<gid_t> HostFs::LookupGroup(std::string_view name_or_id) {
  if (AllDigits(name_or_id)) {
    uint64_t v = std::stoull(std::string(name_or_id));
    if (v <= 0xfffffffeULL) return static_cast<gid_t>(v);
    return std::nullopt;
  }
  LoadTables();
  auto it = groups_.find(name_or_id);
  if (it != groups_.end()) return it->second;
  if (name_or_id == "root") return 0;
  return std::nullopt;
}

std::string HostFs::UserName(uid_t uid) {
  LoadTables();
  auto it = uid_names_.find(uid);
  if (it != uid_names_.end()) return it->second;
  return uid == 0 ? "root" : "";
}

std::string HostFs::GroupName(gid_t gid) {
  LoadTables();
  auto it = gid_names_.find(gid);
  if (it != gid_names_.end()) return it->second;
  return gid == 0 ? "root" : "";
}

}  // namespace kpc::agent
