#pragma once
// What a reconcile asks of the work queue: nothing (done), a retry with backoff (an error), or
// another look after a while (e.g. when a policy exception expires). Only the worker touches
// the queue.

#include <chrono>
#include <optional>

#include "base/status.h"

namespace kpc::controller {

struct ReconcileResult {
  Status status;                                          // not OK: requeue with per-key backoff
  std::optional<std::chrono::nanoseconds> requeue_after;  // OK: look again after this long
};

}  // namespace kpc::controller
