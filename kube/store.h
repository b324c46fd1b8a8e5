#pragma once
// A read-only cache of Kubernetes objects by key ("name" for cluster-scoped objects,
// "namespace/name" otherwise). Informers implement it; controllers read through it, so their
// tests can hand them a fake store instead of a watch stream. Implementations are thread-safe.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace kpc::kube {

class Store {
 public:
  virtual ~Store() = default;
  virtual std::optional<nlohmann::json> Get(const std::string& key) const = 0;
  virtual std::vector<nlohmann::json> List() const = 0;
  // True once the store holds a complete list (an informer: its first list was delivered).
  virtual bool HasSynced() const = 0;
};

}  // namespace kpc::kube
