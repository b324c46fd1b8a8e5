#pragma once
// Remediation conflicts between KubeletPolicies: two policies whose remediations would undo
// each other on nodes both may select. Pure; thread-safe. Used by the admission webhook (as
// warnings) and by the remediation controller (a node both select is Blocked/Conflict).

#include <string>
#include <vector>

#include "policy/label_selector.h"
#include "policy/model.h"

namespace kpc::policy {

// Conflicts between `candidate` and `others`: both have a config rule with the same canonical
// field path, remediation enabled and remediation values that differ (policy::Compare Equals
// on the field's catalog type), on node selectors that may overlap (SelectorsMayOverlap).
// Policies named like the candidate are skipped (that is the candidate's old version).
// Enforcement mode is not considered: switching Audit to Enforce is a one-line change.
std::vector<std::string> FindRemediationConflicts(const KubeletPolicy& candidate,
                                                  const std::vector<KubeletPolicy>& others);

// Conservative: true unless the two selectors clearly select disjoint nodes, i.e. for some
// label key one requirement of `a` and one of `b` cannot both hold (matchLabels count as In
// with one value): In/In with disjoint values, In vs a NotIn that excludes all of its values,
// In vs DoesNotExist, Exists vs DoesNotExist.
bool SelectorsMayOverlap(const LabelSelector& a, const LabelSelector& b);

}  // namespace kpc::policy
