// The budgets a case must keep, derived from its profile and policy by the
// rules traces/FORMAT.md and docs/ARCHITECTURE.md state, not read from the engine: a
// wrong budget inside the engine (Engine::budgets()) is then a violation the
// checker sees, not a number it trusts.
#pragma once

#include "runtime/engine/policy.h"
#include "traces/profile.h"

namespace residency::proof {

engine::Budgets SpecBudgets(const traces::Profile& profile, const engine::Policy& policy);

}  // namespace residency::proof
