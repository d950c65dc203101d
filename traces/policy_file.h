// Policy files (JSON, schema in traces/FORMAT.md) and the bundled presets.
#pragma once

#include <string>

#include "runtime/engine/policy.h"

namespace residency::traces {

Result<engine::Policy> ParsePolicy(const std::string& json_text, const std::string& origin);
Result<engine::Policy> ReadPolicyFile(const std::string& path);
// Writes a policy that ParsePolicy reads back to the same numbers.
std::string WritePolicy(const engine::Policy& policy);

}  // namespace residency::traces
