// The integer figures of a simulated run, named as the runs table's columns
// and `replay --json`'s keys. One list, so the store, compare, the HTML report
// and the metrics cannot disagree about what a run measured.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/sim_result.h"

namespace residency::store {

struct FigureColumn {
  const char* name;
  std::int64_t (*get)(const sim::SimResult&);
};

const std::vector<FigureColumn>& FigureColumns();

// "oom" (the simulated machine ran out of memory), "violation" (an engine
// invariant broke), "infeasible" (the engine refused an op whose working set
// cannot fit: a typed failure, not a crash), else "ok".
std::string Outcome(const sim::SimResult& r);

}  // namespace residency::store
