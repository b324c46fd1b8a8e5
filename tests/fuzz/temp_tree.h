#pragma once
// A scratch directory tree for the fuzz targets that need a host root (agent/host_fs.h,
// agent/detect.h): made once per process under $TMPDIR (or /tmp), removed at exit.
// Helpers never follow symlinks when they create or remove entries, so a tree built from fuzz
// bytes cannot make them touch anything outside it. Single-threaded.

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace kpc::fuzz {

inline int RemoveEntry(const char* path, const struct stat*, int, struct FTW*) {
  ::remove(path);  // unlink for files and links, rmdir for (by then empty) directories
  return 0;
}

// Removes `path` and everything under it (links themselves, never their targets).
inline void RemoveTree(const std::string& path) {
  ::nftw(path.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS);
}

// A fresh directory, removed with its content when the process exits normally.
inline const std::string& ScratchDir() {
  static const std::string* const kDir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/kpc-fuzz-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    auto* dir = new std::string(buf.data());
    std::atexit([] { RemoveTree(ScratchDir()); });
    return dir;
  }();
  return *kDir;
}

// Whether every directory on the way from `base` to `rel` (relative, no ".." segments) is a
// real directory, creating the missing ones: then creating `rel` itself stays under `base`.
inline bool MakeParents(const std::string& base, std::string_view rel) {
  std::string path = base;
  size_t start = 0;
  while (true) {
    size_t slash = rel.find('/', start);
    if (slash == std::string_view::npos) return true;
    std::string_view seg = rel.substr(start, slash - start);
    start = slash + 1;
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") return false;
    path += "/" + std::string(seg);
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      if (::mkdir(path.c_str(), 0755) != 0) return false;
    } else if (!S_ISDIR(st.st_mode)) {
      return false;
    }
  }
}

// Writes `content` to base/rel (replacing a file or link there; never following one).
inline bool WriteTreeFile(const std::string& base, std::string_view rel, std::string_view content) {
  if (!MakeParents(base, rel)) return false;
  const std::string path = base + "/" + std::string(rel);
  ::unlink(path.c_str());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  ::close(fd);
  return ok;
}

}  // namespace kpc::fuzz
