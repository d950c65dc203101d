// The engine's decisions as lines without times: each notice (hit, eviction,
// pin fallback, spill, finalizer...) and each finished op with its status, in
// the order the engine produced them. The simulator and the real executor
// record the same lines for the same workload; a differential test compares
// them.
#pragma once

#include <string>
#include <vector>

#include "runtime/engine/commands.h"

namespace residency::engine {

std::string DecisionLine(const Notice& notice);
std::string DecisionLine(const OpResult& finished);
void AppendDecisions(const Outbox& out, std::vector<std::string>& log);

}  // namespace residency::engine
