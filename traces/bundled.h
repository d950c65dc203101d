// Bundled data (traces/examples, traces/profiles, traces/policies): where it
// is, what is there, and name-or-path resolution for the CLI.
#pragma once

#include <string>
#include <vector>

#include "runtime/engine/policy.h"
#include "traces/profile.h"

namespace residency::traces {

// RESIDENCY_DATA_DIR from the environment, else the source tree's traces/.
std::string DataDir();

struct BundledEntry {
  std::string name;
  std::string path;
  std::string description;
};

std::vector<BundledEntry> ListBundled(const std::string& kind);  // "profiles", "policies", "examples"

// A bundled NAME's file, or FILE itself (a path, or a name ending in .json).
Result<std::string> ResolveBundledPath(const std::string& name_or_path, const std::string& kind);

// A bundled trace's NAME (as `residency traces` lists it) or a trace FILE.
Result<std::string> ResolveTracePath(const std::string& name_or_path);

// NAME (a bundled entry) or FILE (a path ending in .json).
Result<Profile> LoadProfile(const std::string& name_or_path);
Result<engine::Policy> LoadPolicy(const std::string& name_or_path);

}  // namespace residency::traces
