#pragma once
// A shared informer: lists, then watches from the list's resourceVersion (with bookmarks and a
// finite timeoutSeconds), reconnects with capped jittered backoff, relists on 410 Gone, and
// keeps a cache of transformed objects (only the fields the controller needs).
// Handlers run on the informer's own thread, one at a time. The cache is thread-safe.
// How long a watch lasted is read on the given Clock, which (like the Client) must outlive the
// informer; backoff waits are real waits.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "kube/client.h"
#include "kube/store.h"

namespace kpc::kube {

struct InformerOptions {
  std::string list_path;  // "/api/v1/nodes", "/apis/kubeletpolicy.io/v1alpha1/kubeletpolicies"
  std::string label_selector;
  std::string field_selector;
  int watch_timeout_seconds = 300;  // server-side timeout of each watch request
  int page_size = 500;              // list pagination (limit/continue)
  // Keeps only what the controller needs of each object; identity by default.
  std::function<nlohmann::json(const nlohmann::json&)> transform;
};

struct InformerHandlers {
  std::function<void(const nlohmann::json& obj)> on_add;
  std::function<void(const nlohmann::json& old_obj, const nlohmann::json& new_obj)> on_update;
  std::function<void(const nlohmann::json& obj)> on_delete;  // last known state
};

class Informer : public Store {
 public:
  Informer(Client& client, const Clock& clock, InformerOptions options, InformerHandlers handlers);
  ~Informer() override;  // stops
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  void Start();
  void Stop();
  // True once the first list has been delivered to the handlers.
  bool HasSynced() const override;

  // Cache access by key ("name" for cluster-scoped, "namespace/name" otherwise).
  std::optional<nlohmann::json> Get(const std::string& key) const override;
  std::vector<nlohmann::json> List() const override;
  size_t Size() const;

  static std::string KeyOf(const nlohmann::json& obj);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kpc::kube
