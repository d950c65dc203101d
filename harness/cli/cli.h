// The `residency` command line, one file per subcommand. Each Add* function
// declares its subcommand's options on `app` and returns what to run when it
// was chosen. Exit codes: 0 ok, 1 the run found a problem, 2 bad input.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "runtime/engine/policy.h"
#include "runtime/base/status.h"

namespace residency::cli {

struct Subcommand {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

Subcommand AddReplay(CLI::App& app);
Subcommand AddListing(CLI::App& app, const std::string& name, const std::string& kind,
                      const std::string& help);
Subcommand AddLoad(CLI::App& app);
Subcommand AddGenModel(CLI::App& app);
Subcommand AddRun(CLI::App& app);
Subcommand AddCalibrate(CLI::App& app);
Subcommand AddTorture(CLI::App& app);
Subcommand AddSweep(CLI::App& app);
Subcommand AddMerge(CLI::App& app);
Subcommand AddCompare(CLI::App& app);
Subcommand AddGate(CLI::App& app);
Subcommand AddReport(CLI::App& app);
Subcommand AddServe(CLI::App& app);
Subcommand AddSlurm(CLI::App& app);
Subcommand AddImport(CLI::App& app);
Subcommand AddExplain(CLI::App& app);
Subcommand AddFidelity(CLI::App& app);

// Shared helpers: a one-line error on stderr (exit 2), writing a text file.
int Fail(const Status& s);
// "residency: warning: ..." on stderr, once per distinct line.
void PrintWarnings(const std::vector<std::string>& warnings);
bool WriteTextFile(const std::string& path, const std::string& text);
// "12 GiB", "64MiB", "1.5 GB" -> bytes (CLI11 transform for byte options).
CLI::Validator ByteSize();
// An old spelling of an option, kept for one release: hidden from --help,
// it sets the same value and says on stderr what the new spelling is.
template <typename T>
CLI::Option* OldSpelling(CLI::App* app, const std::string& old_name, const std::string& new_name, T& value) {
  return app->add_option(old_name, value)
      ->group("")
      ->each([old_name, new_name](const std::string&) {
        std::fprintf(stderr, "residency: %s is now %s (the old spelling goes in the next release)\n",
                     old_name.c_str(), new_name.c_str());
      });
}

// --traces-from: captured traces also run on their own machine under their
// own settings: "captured" joins the profiles and policies (once).
void AddCapturedInputs(std::vector<std::string>& profiles, std::vector<std::string>& policies);

// Refuses a device the policy's device_reserve leaves nothing of (every op
// would fail with "0 MiB obtainable"), naming both figures and the way out.
Status CheckDeviceRoom(const engine::MachineLimits& machine, const engine::Policy& policy);

}  // namespace residency::cli
