#pragma once
// Temporary directories and file helpers for the agent tests.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

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

}  // namespace kpc::agent::testing
