#include "agent/host_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>
#include <vector>

#include "agent/result.h"

namespace kpc::agent {
namespace {

constexpr int kMaxSymlinks = 40;  // as Linux's path resolution
constexpr size_t kMaxFileBytes = 16 * 1024 * 1024;
constexpr size_t kMaxDirEntries = 4096;

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() { return std::exchange(fd_, -1); }

 private:
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd_ = -1;
};

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

bool AllDigits(std::string_view s) {
  if (s.empty() || s.size() > 10) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

StatusCode CodeOf(int err) {
  if (err == ENOENT) return StatusCode::kNotFound;
  if (err == EACCES || err == EPERM || err == EROFS) return StatusCode::kPermissionDenied;
  return StatusCode::kInternal;
}

Status ErrnoStatus(int err, const std::string& what) {
  return Status(CodeOf(err), what + ": " + ErrnoText(err));
}

FileIdentity IdentityOf(const struct stat& st) {
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
          static_cast<uint32_t>(st.st_mode)};
}

// Where a walk ended: the directory holding the final object (every symlink on the way resolved
// inside the root) and the final object opened with the walk's flags (invalid when the name
// does not exist there). `name` is empty when the path is the host root itself.
struct Walked {
  Fd dir;
  std::string name;
  Fd fd;
  std::string host_path;  // for messages only
};

// One path resolution inside a host root (see the header). `final_flags` open the last segment
// (O_NOFOLLOW|O_CLOEXEC are added); a symlink there is followed like any other.
class Walker {
 public:
  Walker(const std::string& root, std::string_view node_path)
      : root_(root), node_path_(node_path) {}

  StatusOr<Walked> Run(int final_flags) {
    Status v = ValidateNodePath(node_path_);
    if (!v.ok()) return v;
    Fd root(::open(root_.empty() ? "/" : root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root.valid()) return ErrnoStatus(errno, "host root " + Display());
    dirs_.push_back(std::move(root));
    std::vector<std::string> segs = SplitPath(node_path_);
    todo_.assign(segs.rbegin(), segs.rend());
    for (;;) {
      while (!todo_.empty()) {
        std::string seg = std::move(todo_.back());
        todo_.pop_back();
        if (seg == ".") continue;
        if (seg == "..") {  // only from link targets: never above the host root
          if (dirs_.size() > 1) {
            dirs_.pop_back();
            names_.pop_back();
          }
          continue;
        }
        StatusOr<bool> done = todo_.empty() ? Final(seg, final_flags) : Intermediate(seg);
        if (!done.ok()) return done.status();
        if (*done) return std::move(result_);
      }
      // The path ended on a directory through "." or "..": open it by name from its parent.
      if (dirs_.size() == 1) return RootItself(final_flags);
      todo_.push_back(names_.back());
      names_.pop_back();
      dirs_.pop_back();
    }
  }

 private:
  std::string Display() const { return std::string(node_path_); }

  std::string HostPath(const std::string& last) const {
    std::string out = root_;
    for (const auto& n : names_) out += "/" + n;
    if (!last.empty()) out += "/" + last;
    return out.empty() ? "/" : out;
  }

  // A directory on the way (or a symlink to follow). Returns false: keep walking.
  StatusOr<bool> Intermediate(const std::string& seg) {
    Fd fd(::openat(dirs_.back().get(), seg.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return ErrnoStatus(errno, Display());
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, Display());
    if (S_ISLNK(st.st_mode)) {
      Status s = FollowLink(fd.get(), "");
      if (!s.ok()) return s;
      return false;
    }
    if (!S_ISDIR(st.st_mode)) return ErrnoStatus(ENOTDIR, Display());
    dirs_.push_back(std::move(fd));
    names_.push_back(seg);
    return false;
  }

  // The last segment. Returns true when the walk is over (result_ set), false when it was a
  // symlink whose target is now to be walked.
  StatusOr<bool> Final(const std::string& seg, int flags) {
    const int dir = dirs_.back().get();
    Fd fd(::openat(dir, seg.c_str(), flags | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) {
      int err = errno;
      if (err == ENOENT) return Finish(seg, Fd());
      struct stat st {};
      // O_NOFOLLOW refuses a symlink (ELOOP, or ENOTDIR with O_DIRECTORY): follow it ourselves.
      if ((err == ELOOP || err == ENOTDIR) &&
          ::fstatat(dir, seg.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
        Status s = FollowLink(dir, seg);
        if (!s.ok()) return s;
        return false;
      }
      return ErrnoStatus(err, Display());
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, Display());
    if (S_ISLNK(st.st_mode)) {  // only with O_PATH
      Status s = FollowLink(fd.get(), "");
      if (!s.ok()) return s;
      return false;
    }
    return Finish(seg, std::move(fd));
  }

  StatusOr<bool> Finish(const std::string& seg, Fd fd) {
    result_.host_path = HostPath(seg);
    result_.name = seg;
    result_.fd = std::move(fd);
    result_.dir = std::move(dirs_.back());
    return true;
  }

  StatusOr<Walked> RootItself(int flags) {
    Fd fd(::openat(dirs_.back().get(), ".", flags | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return ErrnoStatus(errno, Display());
    result_.host_path = HostPath("");
    result_.fd = std::move(fd);
    result_.dir = std::move(dirs_.back());
    return std::move(result_);
  }

  // Pushes the target of the link (`at`/`name`, or the O_PATH link `at` with an empty name) in
  // front of the rest of the path.
  Status FollowLink(int at, const std::string& name) {
    if (++links_ > kMaxSymlinks) {
      return InvalidArgument(Display() + ": too many levels of symbolic links");
    }
    std::vector<char> buf(PATH_MAX + 1);
    ssize_t n = ::readlinkat(at, name.c_str(), buf.data(), buf.size());
    if (n < 0) {
      // Replaced by something else since it was seen: look at the name again.
      if (errno == EINVAL && !name.empty()) {
        todo_.push_back(name);
        return Status::Ok();
      }
      return ErrnoStatus(errno, Display());
    }
    if (static_cast<size_t>(n) >= buf.size() - 1) {
      return InvalidArgument(Display() + ": a symbolic link target is too long");
    }
    std::string target(buf.data(), static_cast<size_t>(n));
    if (target.empty()) return ErrnoStatus(ENOENT, Display());
    if (target[0] == '/') {  // absolute: from the host root
      dirs_.resize(1);
      names_.clear();
    }
    std::vector<std::string> segs = SplitPath(target);
    todo_.insert(todo_.end(), segs.rbegin(), segs.rend());
    return Status::Ok();
  }

  const std::string& root_;
  std::string_view node_path_;
  std::vector<Fd> dirs_;            // the root, then each directory walked into
  std::vector<std::string> names_;  // their names (dirs_[i + 1] is names_[i])
  std::vector<std::string> todo_;   // segments still to walk, the next one last
  int links_ = 0;
  Walked result_;
};

StatusOr<Walked> Walk(const std::string& root, std::string_view node_path, int final_flags) {
  return Walker(root, node_path).Run(final_flags);
}

// Reads a regular file from `fd` (at its current offset) up to kMaxFileBytes.
StatusOr<std::string> ReadAllBounded(int fd, const std::string& display) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, display);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxFileBytes) {
      return InvalidArgument(display + " is larger than 16 MiB; not a kubelet file");
    }
  }
  return out;
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

Status FsyncDir(int dir, const std::string& display) {
  Fd fd(::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, "open the directory of " + display);
  // Some filesystems do not support fsync on directories; the rename has happened regardless.
  if (::fsync(fd.get()) != 0 && errno != EINVAL && errno != EROFS) {
    return ErrnoStatus(errno, "fsync the directory of " + display);
  }
  return Status::Ok();
}

// A new, exclusively created temporary file next to `name` in `dir`.
StatusOr<std::pair<Fd, std::string>> CreateTemp(int dir, const std::string& name) {
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  int err = EEXIST;
  for (int attempt = 0; attempt < 100 && err == EEXIST; ++attempt) {
    unsigned char rnd[8] = {};
    if (::getrandom(rnd, sizeof rnd, 0) != static_cast<ssize_t>(sizeof rnd)) {
      for (auto& b : rnd) b = static_cast<unsigned char>(::getpid() + attempt * 7 + (&b - rnd));
    }
    std::string tmp = "." + name + ".kpc-tmp-";
    for (unsigned char b : rnd) tmp += kChars[b % (sizeof kChars - 1)];
    Fd fd(::openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (fd.valid()) return std::make_pair(std::move(fd), tmp);
    err = errno;
  }
  return Status(CodeOf(err), ErrnoText(err));
}

// Creates `name` in `dir` atomically with `content`, mode and owner.
Status ReplaceAt(int dir, const std::string& name, std::string_view content, mode_t mode, uid_t uid,
                 gid_t gid, const std::string& display) {
  auto temp = CreateTemp(dir, name);
  if (!temp.ok()) {
    return Status(temp.status().code(),
                  "cannot write " + display +
                      " (creating a temporary file in its directory): " + temp.status().message());
  }
  Fd fd = std::move(temp->first);
  const std::string tmp = temp->second;
  auto fail = [&](const std::string& what) {
    int err = errno;
    ::unlinkat(dir, tmp.c_str(), 0);
    return ErrnoStatus(err, "cannot write " + display + " (" + what + ")");
  };
  if (!WriteAll(fd.get(), content)) return fail("write");
  if (::fchmod(fd.get(), mode) != 0) return fail("chmod");
  if (::fchown(fd.get(), uid, gid) != 0) return fail("chown");
  if (::fsync(fd.get()) != 0) return fail("fsync");
  if (::close(fd.Release()) != 0) return fail("close");
  if (::renameat(dir, tmp.c_str(), dir, name.c_str()) != 0) return fail("rename");
  return FsyncDir(dir, display);
}

// The walk's final object opened for reading, when it is the regular file the walk found (an
// O_PATH descriptor): opened by name in the walk's directory without following a symlink, so a
// swap since the walk is noticed rather than followed.
StatusOr<Fd> OpenRegular(const Walked& w, const std::string& display) {
  if (!w.fd.valid()) return ErrnoStatus(ENOENT, display);
  struct stat seen {};
  if (::fstat(w.fd.get(), &seen) != 0) return ErrnoStatus(errno, display);
  if (!S_ISREG(seen.st_mode)) return InvalidArgument(display + " is not a regular file");
  Fd fd(::openat(w.dir.get(), w.name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ELOOP) return InvalidArgument(display + " changed while being examined");
    return ErrnoStatus(errno, display);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, display);
  if (!S_ISREG(st.st_mode) || !SameFile(IdentityOf(st), IdentityOf(seen))) {
    return InvalidArgument(display + " changed while being examined");
  }
  return fd;
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
  auto w = Walk(root_, node_path, O_PATH);
  if (!w.ok()) return w.status();
  return w->host_path;
}

StatusOr<std::string> HostFs::ReadFile(std::string_view node_path) const {
  const std::string display(node_path);
  auto w = Walk(root_, node_path, O_PATH);
  if (!w.ok()) return w.status();
  if (!w->fd.valid()) return ErrnoStatus(ENOENT, display);
  // Checked before it is opened: opening a device or a FIFO could block or have effects.
  auto fd = OpenRegular(*w, display);
  if (!fd.ok()) return fd.status();
  return ReadAllBounded(fd->get(), display);
}

bool HostFs::Exists(std::string_view node_path) const {
  auto w = Walk(root_, node_path, O_PATH);
  return w.ok() && w->fd.valid();
}

bool HostFs::IsDirectory(std::string_view node_path) const {
  auto st = Stat(node_path);
  return st.ok() && S_ISDIR(st->mode);
}

StatusOr<FileIdentity> HostFs::Stat(std::string_view node_path) const {
  auto w = Walk(root_, node_path, O_PATH);
  if (!w.ok()) return w.status();
  if (!w->fd.valid()) return ErrnoStatus(ENOENT, std::string(node_path));
  struct stat st {};
  if (::fstat(w->fd.get(), &st) != 0) return ErrnoStatus(errno, std::string(node_path));
  return IdentityOf(st);
}

StatusOr<std::vector<std::string>> HostFs::ListDir(std::string_view node_path) const {
  const std::string display(node_path);
  auto w = Walk(root_, node_path, O_RDONLY | O_DIRECTORY);
  if (!w.ok()) return w.status();
  if (!w->fd.valid()) return ErrnoStatus(ENOENT, display);
  DIR* d = ::fdopendir(w->fd.get());
  if (d == nullptr) return ErrnoStatus(errno, display);
  w->fd.Release();  // owned by `d` now
  std::vector<std::string> names;
  bool too_many = false;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    if (names.size() == kMaxDirEntries) {
      too_many = true;
      break;
    }
    names.push_back(std::move(n));
  }
  ::closedir(d);
  if (too_many) {
    return ResourceExhausted(display + " has more than " + std::to_string(kMaxDirEntries) +
                             " entries");
  }
  std::sort(names.begin(), names.end());
  return names;
}

policy::FileFacts HostFs::Facts(std::string_view node_path) {
  policy::FileFacts f;
  auto w = Walk(root_, node_path, O_PATH);
  if (!w.ok()) {
    if (w.status().code() == StatusCode::kNotFound) return f;  // a missing directory
    f.error = w.status().message();
    return f;
  }
  if (!w->fd.valid()) return f;
  struct stat st {};
  if (::fstat(w->fd.get(), &st) != 0) {
    f.error = ErrnoText(errno);
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
  const std::string display(node_path);
  auto w = Walk(root_, node_path, O_PATH);
  if (!w.ok()) return w.status();
  if (w->name.empty()) return InvalidArgument(display + " is not a regular file");
  mode_t mode = create_mode;
  uid_t uid = 0;
  gid_t gid = 0;
  if (w->fd.valid()) {
    auto original = OpenRegular(*w, display);
    if (!original.ok()) return original.status();
    struct stat st {};
    if (::fstat(original->get(), &st) != 0) return ErrnoStatus(errno, display);
    mode = st.st_mode & 07777;
    uid = st.st_uid;
    gid = st.st_gid;
    const std::string bak = w->name + std::string(kBackupSuffix);
    struct stat bst {};
    if (backup && ::fstatat(w->dir.get(), bak.c_str(), &bst, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) return ErrnoStatus(errno, display + std::string(kBackupSuffix));
      auto text = ReadAllBounded(original->get(), display);
      if (!text.ok()) return text.status();
      Status s =
          ReplaceAt(w->dir.get(), bak, *text, mode, uid, gid, display + std::string(kBackupSuffix));
      if (!s.ok()) return s;
    }
  }
  return ReplaceAt(w->dir.get(), w->name, content, mode, uid, gid, display);
}

Status HostFs::Chmod(std::string_view node_path, uint32_t mode) {
  const std::string display(node_path);
  auto w = Walk(root_, node_path, O_PATH);
  if (!w.ok()) return w.status();
  if (!w->fd.valid()) return ErrnoStatus(ENOENT, "chmod " + display);
  auto fd = OpenRegular(*w, display);
  if (!fd.ok()) return fd.status();
  if (::fchmod(fd->get(), mode) != 0) return ErrnoStatus(errno, "chmod " + display);
  return Status::Ok();
}

Status HostFs::Chown(std::string_view node_path, uid_t uid, gid_t gid) {
  const std::string display(node_path);
  auto w = Walk(root_, node_path, O_PATH);
  if (!w.ok()) return w.status();
  if (!w->fd.valid()) return ErrnoStatus(ENOENT, "chown " + display);
  auto fd = OpenRegular(*w, display);
  if (!fd.ok()) return fd.status();
  if (::fchown(fd->get(), uid, gid) != 0) return ErrnoStatus(errno, "chown " + display);
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
