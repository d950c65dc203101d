#include <algorithm>
#include <fstream>
#include <iostream>

#include "harness/cli/cli.h"
#include "traces/bundled.h"
#include "traces/units.h"

namespace residency::cli {

int Fail(const Status& s) {
  std::cerr << "residency: " << s.message() << "\n";
  return 2;
}

void PrintWarnings(const std::vector<std::string>& warnings) {
  std::vector<std::string> seen;
  for (const std::string& w : warnings) {
    if (std::find(seen.begin(), seen.end(), w) != seen.end()) continue;
    seen.push_back(w);
    std::cerr << "residency: warning: " << w << "\n";
  }
}

void AddCapturedInputs(std::vector<std::string>& profiles, std::vector<std::string>& policies) {
  for (auto* list : {&profiles, &policies})
    if (std::find(list->begin(), list->end(), "captured") == list->end()) list->push_back("captured");
}

bool WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) {
    std::cerr << "residency: cannot write " << path << "\n";
    return false;
  }
  return true;
}

CLI::Validator ByteSize() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        const bool digits = !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
        const nlohmann::json j = digits ? nlohmann::json(std::stoll(value)) : nlohmann::json(value);
        auto bytes = traces::ParseBytes(j, "size");
        if (!bytes.ok()) return bytes.status().message();
        value = std::to_string(bytes.value());
        return "";
      },
      "BYTES", "byte size");
}

Status CheckDeviceRoom(const engine::MachineLimits& machine, const engine::Policy& policy) {
  if (machine.unified || policy.device_reserve_bytes < machine.device_bytes) return Status::Ok();
  auto mib = [](engine::Bytes b) { return std::to_string(b / engine::kMiB) + " MiB"; };
  return InvalidArgument("the device has " + mib(machine.device_bytes) + " and policy '" + policy.name +
                         "' keeps " + mib(policy.device_reserve_bytes) +
                         " of it free (device_reserve): nothing is left for models. Give a larger "
                         "--device-capacity, or a policy with a smaller device_reserve");
}

Subcommand AddListing(CLI::App& app, const std::string& name, const std::string& kind,
                      const std::string& help) {
  CLI::App* sub = app.add_subcommand(name, help);
  return {sub, [kind] {
            const auto entries = traces::ListBundled(kind);
            if (entries.empty()) {
              std::cerr << "residency: no bundled " << kind << " found in " << traces::DataDir()
                        << " (set RESIDENCY_DATA_DIR)\n";
              return 2;
            }
            for (const auto& e : entries)
              std::printf("%-22s %s\n", e.name.c_str(), e.description.c_str());
            return 0;
          }};
}

}  // namespace residency::cli
