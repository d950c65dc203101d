// RapidCheck generators for whole cases: a trace (models of random sizes and
// tensor counts; random sequences of load, compute, release, delete, patch,
// partial and dynamic loads), a machine profile (RAM, VRAM, unified, disk and
// PCIe across realistic ranges) and a policy (every loader, eviction and
// budget option). They shrink structurally: fewer ops, fewer and smaller
// models, simpler policies. Used by the property tests and `residency torture`.
#pragma once

#include <rapidcheck.h>

#include <string>

#include "runtime/engine/policy.h"
#include "traces/profile.h"
#include "traces/trace.h"

namespace residency::proof {

struct Case {
  traces::Trace trace;
  traces::Profile profile;
  engine::Policy policy;
};

rc::Gen<traces::Trace> GenTrace();
rc::Gen<traces::Profile> GenProfile();
rc::Gen<engine::Policy> GenPolicy();
rc::Gen<Case> GenCase();

// One line naming the case, for failure messages.
std::string Describe(const Case& c);

}  // namespace residency::proof
