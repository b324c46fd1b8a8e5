#pragma once
// The node's filesystem as the agent sees it: node paths ("/etc/kubernetes/kubelet.conf") under a
// host root ("/host"). Every operation walks its path one segment at a time from a descriptor of
// the host root (openat with O_PATH|O_NOFOLLOW) and resolves symlinks itself, the way they would
// resolve on the node but never outside the host root: an absolute link target starts again at
// the host root, ".." never climbs above it, at most 40 links per path. The final object is then
// used through the descriptor (or the parent directory's descriptor) that walk produced, never
// through a path string the kernel walks again, so a path component swapped for a symlink
// between a check and its use cannot lead outside the host root:
//  * ReadFile, Chmod and Chown work on regular files only (anything else, directories included,
//    is refused before it is opened): the final name is opened in the walk's directory with
//    O_RDONLY|O_NOFOLLOW|O_NONBLOCK, must still be the file the walk found, and is then read or
//    fchmod()ed/fchown()ed through that descriptor;
//  * atomic replacement creates its temporary file in, and renameat()s it within, the parent
//    directory descriptor of the walk.
// Also the host's users and groups (its /etc/passwd and /etc/group).
// Not thread-safe (it caches the user and group tables); one per agent run.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "policy/evaluate.h"

namespace kpc::agent {

// An absolute node path without "." or ".." segments; InvalidArgument otherwise (names the path).
Status ValidateNodePath(std::string_view path);

// Which file an object is (device and inode) and its st_mode (type and permission bits).
struct FileIdentity {
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint32_t mode = 0;
};
inline bool SameFile(const FileIdentity& a, const FileIdentity& b) {
  return a.dev == b.dev && a.ino == b.ino;
}

class HostFs {
 public:
  explicit HostFs(std::string host_root);

  const std::string& root() const { return root_; }

  // Where `node_path` is under the host root after resolving every symlink inside it, as a
  // string for messages (no operation uses it). The last segment may be missing (the result then
  // names where it would be). Errors: an invalid path, a symlink loop, a missing directory on
  // the way (NotFound).
  StatusOr<std::string> Resolve(std::string_view node_path) const;

  // Reads a whole regular file (NotFound when missing; refuses files over 16 MiB).
  StatusOr<std::string> ReadFile(std::string_view node_path) const;
  bool Exists(std::string_view node_path) const;
  // Whether the node path is an existing directory.
  bool IsDirectory(std::string_view node_path) const;
  // The identity of the object the path names (symlinks followed inside the root); NotFound when
  // missing.
  StatusOr<FileIdentity> Stat(std::string_view node_path) const;
  // The names in a directory, without "." and "..", sorted; at most 4096 (ResourceExhausted
  // beyond).
  StatusOr<std::vector<std::string>> ListDir(std::string_view node_path) const;

  // exists/mode/uid/gid and owner/group names from the host's tables; an `error` instead of
  // throwing when the file cannot be examined.
  policy::FileFacts Facts(std::string_view node_path);

  // Replaces (or creates) a regular file atomically: a temporary file in the same directory,
  // written and fsynced, given the original's mode and owner (`create_mode`, root:root for a new
  // file), renamed over the original, then the directory fsynced. With `backup`, the original
  // content is first saved as "<file>.kpc-backup" unless that name already exists (the backup
  // keeps the file as it was before the agent first changed it).
  Status WriteFileAtomic(std::string_view node_path, std::string_view content, bool backup,
                         uint32_t create_mode = 0600);

  // Regular files only (InvalidArgument otherwise).
  Status Chmod(std::string_view node_path, uint32_t mode);
  Status Chown(std::string_view node_path, uid_t uid, gid_t gid);

  // Host user/group names <-> ids; numeric strings are ids.
  std::optional<uid_t> LookupUser(std::string_view name_or_id);
  std::optional<gid_t> LookupGroup(std::string_view name_or_id);
  std::string UserName(uid_t uid);  // "" when unknown
  std::string GroupName(gid_t gid);

 private:
  void LoadTables();

  std::string root_;
  bool tables_loaded_ = false;
  std::map<std::string, uint32_t, std::less<>> users_, groups_;
  std::map<uint32_t, std::string> uid_names_, gid_names_;
};

// The suffix of backups. Not ".conf", so systemd ignores backups in drop-in directories.
inline constexpr std::string_view kBackupSuffix = ".kpc-backup";

// "permission denied" style text for errno.
std::string ErrnoText(int err);

}  // namespace kpc::agent
