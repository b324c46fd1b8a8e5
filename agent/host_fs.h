#pragma once
// The node's filesystem as the agent sees it: node paths ("/etc/kubernetes/kubelet.conf")
// resolved under a host root ("/host"), with symlinks followed the way they would be on the node
// (an absolute link target starts again at the host root, ".." never climbs above it), so no path
// or link can lead outside the host root. Also the host's users and groups (its /etc/passwd and
// /etc/group) and atomic file replacement.
// Not thread-safe (it caches the user and group tables); one per agent run.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "policy/evaluate.h"
#include "base/status.h"

namespace kpc::agent {

// An absolute node path without "." or ".." segments; InvalidArgument otherwise (names the path).
Status ValidateNodePath(std::string_view path);

class HostFs {
 public:
  explicit HostFs(std::string host_root);

  const std::string& root() const { return root_; }

  // The host path of `node_path` with every symlink resolved inside the host root. The last
  // segment may be missing (the result then names where it would be). Errors: an invalid path,
  // a symlink loop, a missing directory on the way (NotFound).
  StatusOr<std::string> Resolve(std::string_view node_path) const;

  // Reads a whole file (NotFound when missing; refuses files over 16 MiB).
  StatusOr<std::string> ReadFile(std::string_view node_path) const;
  bool Exists(std::string_view node_path) const;
  // Whether the node path is an existing directory.
  bool IsDirectory(std::string_view node_path) const;

  // exists/mode/uid/gid and owner/group names from the host's tables; an `error` instead of
  // throwing when the file cannot be examined.
  policy::FileFacts Facts(std::string_view node_path);

  // Replaces (or creates) a file atomically: a temporary file in the same directory, written and
  // fsynced, given the original's mode and owner (`create_mode`, root:root for a new file),
  // renamed over the original, then the directory fsynced. With `backup`, the original content is
  // first saved as "<file>.kpc-backup" unless that file already exists (the backup keeps the file
  // as it was before the agent first changed it).
  Status WriteFileAtomic(std::string_view node_path, std::string_view content, bool backup,
                         uint32_t create_mode = 0600);

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
