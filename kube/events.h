#pragma once
// Records core/v1 Events about objects, rate-limited per object (token bucket per involved
// object) and aggregated the way client-go does: a repeat of the same (object, reason,
// message) within the window updates the existing Event's count instead of creating another.

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "kube/client.h"

namespace kpc::kube {

struct ObjectRef {
  std::string api_version;  // "kubeletpolicy.io/v1alpha1", "v1"
  std::string kind;         // "KubeletPolicy", "Node"
  std::string name;
  std::string namespace_;   // empty for cluster-scoped
  std::string uid;
};

class EventRecorder {
 public:
  virtual ~EventRecorder() = default;
  // type: "Normal" or "Warning". Events of cluster-scoped objects go to `default_namespace`.
  virtual void Record(const ObjectRef& obj, const std::string& type, const std::string& reason,
                      const std::string& message) = 0;
};

std::unique_ptr<EventRecorder> NewEventRecorder(Client& client, std::string component,
                                                std::string default_namespace = "default");

}  // namespace kpc::kube
