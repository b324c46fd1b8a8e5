#pragma once
// The fixed CIS policy the fuzz targets evaluate and compare against:
// tests/testdata/api-example.yaml, read once. Aborts when it cannot be read or parsed (the
// target would test nothing). Not thread-safe on first use; fuzz targets are single-threaded.

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "policy/model.h"

namespace kpc::fuzz {

inline const policy::KubeletPolicy& CisPolicy() {
  static const policy::KubeletPolicy* const kPolicy = [] {
    const std::string path = std::string(KPC_SOURCE_DIR) + "/tests/testdata/api-example.yaml";
    std::ifstream in(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto parsed = policy::ParsePolicies(text, path);
    if (!parsed.ok() || parsed->size() != 1) {
      std::fprintf(stderr, "cannot load the CIS policy %s: %s\n", path.c_str(),
                   parsed.ok() ? "not one policy" : parsed.status().message().c_str());
      std::abort();
    }
    return new policy::KubeletPolicy(std::move((*parsed)[0].policy));
  }();
  return *kPolicy;
}

}  // namespace kpc::fuzz
