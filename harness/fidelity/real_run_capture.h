// What a real run (`residency run`, executor::RunWorkload) needs from the
// machine it runs on, and what it writes back: the trace with measured times.
#pragma once

#include <cstdint>

#include "runtime/engine/policy.h"
#include "runtime/executor/real_executor.h"
#include "traces/trace.h"

namespace residency::fidelity {

// This machine's RAM (from the kernel) and a device of `device_bytes`.
engine::MachineLimits ThisMachine(std::uint64_t device_bytes);

// The input trace with what the run measured: when each event's op ended, and
// each prompt's wall time (docs/CAPTURE.md).
traces::Trace CapturedTrace(traces::Trace trace, const executor::RunResult& r);

}  // namespace residency::fidelity
