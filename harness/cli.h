// The `residency` command line, one file per subcommand. Each Add* function
// declares its subcommand's options on `app` and returns what to run when it
// was chosen. Exit codes: 0 ok, 1 the run found a problem, 2 bad input.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "runtime/engine/status.h"

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
Subcommand AddReport(CLI::App& app);
Subcommand AddServe(CLI::App& app);
Subcommand AddSlurm(CLI::App& app);
Subcommand AddImport(CLI::App& app);
Subcommand AddExplain(CLI::App& app);
Subcommand AddFidelity(CLI::App& app);

// Shared helpers: a one-line error on stderr (exit 2), writing a text file.
int Fail(const Status& s);
bool WriteTextFile(const std::string& path, const std::string& text);
// "12 GiB", "64MiB", "1.5 GB" -> bytes (CLI11 transform for byte options).
CLI::Validator ByteSize();

}  // namespace residency::cli
