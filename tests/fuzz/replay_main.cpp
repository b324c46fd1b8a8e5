// Replays inputs through a fuzz target's LLVMFuzzerTestOneInput without libFuzzer: the seed
// corpus and the kept reproducers of tests/fuzz, as a ctest of the normal build.
//
//   <target>_fuzz_replay [--source DIR] [--shared DIR] [--seeds LIST]... [FILE|DIR]...
//
// LIST (tests/fuzz/seeds/<target>.txt) names seed files, one glob pattern a line, relative to
// the checkout ("source:tests/testdata/*.yaml") or to the shared data directory
// ("shared:kubelet/configz-*.json"); '#' starts a comment. A pattern that matches nothing is an
// error (the list went stale). A DIR argument replays every regular file in it, and may be
// missing (a target without reproducers). A failing input aborts (the sanitizers of the fuzz
// build are not here, but every property check is).

#include <dirent.h>
#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool IsRegularFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string path = dir + "/" + e->d_name;
    if (e->d_name[0] != '.' && IsRegularFile(path)) out.push_back(path);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// The files a seed list names; false (with a message) when it cannot be read or is stale.
bool ExpandSeedList(const std::string& list, const std::string& source, const std::string& shared,
                    std::vector<std::string>& out) {
  std::ifstream in(list);
  if (!in) {
    std::fprintf(stderr, "cannot read seed list %s\n", list.c_str());
    return false;
  }
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    line = Trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    std::string base;
    if (line.rfind("source:", 0) == 0) {
      base = source;
    } else if (line.rfind("shared:", 0) == 0) {
      base = shared;
    } else {
      std::fprintf(stderr, "%s:%d: want source:PATTERN or shared:PATTERN\n", list.c_str(), n);
      return false;
    }
    std::string pattern = base + "/" + line.substr(line.find(':') + 1);
    glob_t g{};
    int rc = ::glob(pattern.c_str(), 0, nullptr, &g);
    size_t matched = 0;
    for (size_t i = 0; rc == 0 && i < g.gl_pathc; ++i) {
      if (IsRegularFile(g.gl_pathv[i])) {
        out.emplace_back(g.gl_pathv[i]);
        ++matched;
      }
    }
    ::globfree(&g);
    if (matched == 0) {
      std::fprintf(stderr, "%s:%d: %s matches no file\n", list.c_str(), n, pattern.c_str());
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string source = ".", shared = "../shared/data";
  std::vector<std::string> lists, inputs;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--source" || a == "--shared" || a == "--seeds") && i + 1 < argc) {
      std::string v = argv[++i];
      (a == "--source" ? source : a == "--shared" ? shared : lists.emplace_back()) = v;
    } else {
      inputs.push_back(a);
    }
  }
  std::vector<std::string> files;
  for (const std::string& list : lists) {
    if (!ExpandSeedList(list, source, shared, files)) return 1;
  }
  for (const std::string& in : inputs) {
    if (IsDirectory(in)) {
      for (std::string& f : FilesIn(in)) files.push_back(std::move(f));
    } else if (IsRegularFile(in)) {
      files.push_back(in);
    } else if (in.find("/regressions/") == std::string::npos) {
      std::fprintf(stderr, "no such input: %s\n", in.c_str());
      return 1;
    }
  }
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "replay %s (%zu bytes)\n", f.c_str(), data.size());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  }
  std::printf("replayed %zu inputs\n", files.size());
  return 0;
}
