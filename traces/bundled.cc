#include "traces/bundled.h"
#include "runtime/io/whole_file.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "traces/json_fields.h"
#include "traces/policy_file.h"
#include "traces/trace.h"

#ifndef RESIDENCY_SOURCE_DATA_DIR
#define RESIDENCY_SOURCE_DATA_DIR "traces"
#endif

namespace residency::traces {
namespace fs = std::filesystem;

std::string DataDir() {
  if (const char* env = std::getenv("RESIDENCY_DATA_DIR"); env && *env) return env;
  return RESIDENCY_SOURCE_DATA_DIR;
}

std::vector<BundledEntry> ListBundled(const std::string& kind) {
  std::vector<BundledEntry> out;
  const fs::path dir = fs::path(DataDir()) / kind;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const fs::path p = entry.path();
    const std::string ext = p.extension().string();
    if (ext != ".json" && ext != ".jsonl") continue;
    BundledEntry e{p.stem().string(), p.string(), ""};
    if (ext == ".json") {
      auto text = io::ReadWholeFile(p.string());
      if (text.ok()) {
        auto j = ParseJsonObject(*text, p.string());
        if (j.ok() && j->contains("description") && (*j)["description"].is_string())
          e.description = (*j)["description"].get<std::string>();
      }
    } else {
      auto t = ReadTraceFile(p.string());
      if (t.ok()) e.description = t->header.description;
    }
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(),
            [](const BundledEntry& a, const BundledEntry& b) { return a.name < b.name; });
  return out;
}

Result<std::string> ResolveBundledPath(const std::string& name_or_path, const std::string& kind) {
  if (name_or_path.find('/') != std::string::npos ||
      (name_or_path.size() > 5 && name_or_path.substr(name_or_path.size() - 5) == ".json")) {
    return name_or_path;
  }
  // A bundled name is a file name; the folder is listed only to explain a miss.
  const fs::path candidate = fs::path(DataDir()) / kind / (name_or_path + ".json");
  std::error_code ec;
  if (fs::is_regular_file(candidate, ec)) return candidate.string();
  std::string known;
  for (const BundledEntry& e : ListBundled(kind)) known += (known.empty() ? "" : ", ") + e.name;
  const std::string noun = kind == "policies" ? "policy" : kind == "profiles" ? "profile" : "trace";
  return NotFound("unknown " + noun + " '" + name_or_path +
                  "' (bundled: " + (known.empty() ? "none found in " + DataDir() : known) + ")");
}

Result<std::string> ResolveTracePath(const std::string& name_or_path) {
  std::error_code ec;
  if (name_or_path.find('/') != std::string::npos || name_or_path.ends_with(".jsonl") ||
      fs::exists(name_or_path, ec))
    return name_or_path;
  const fs::path candidate = fs::path(DataDir()) / "examples" / (name_or_path + ".jsonl");
  if (fs::is_regular_file(candidate, ec)) return candidate.string();
  std::string known;
  for (const BundledEntry& e : ListBundled("examples")) known += (known.empty() ? "" : ", ") + e.name;
  return NotFound("'" + name_or_path + "' is neither a trace file nor a bundled trace (bundled: " +
                  (known.empty() ? "none found in " + DataDir() : known) + ")");
}

Result<Profile> LoadProfile(const std::string& name_or_path) {
  RESIDENCY_ASSIGN_OR_RETURN(std::string path, ResolveBundledPath(name_or_path, "profiles"));
  return ReadProfileFile(path);
}

Result<engine::Policy> LoadPolicy(const std::string& name_or_path) {
  RESIDENCY_ASSIGN_OR_RETURN(std::string path, ResolveBundledPath(name_or_path, "policies"));
  return ReadPolicyFile(path);
}

}  // namespace residency::traces
