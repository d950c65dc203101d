// The `residency` command line. Exceptions stop here: the libraries below
// return Status values, and the subcommands (harness/cli_*.cc) turn them into
// one-line errors and exit codes (0 ok, 1 the run found a problem, 2 bad input).
#include <exception>
#include <iostream>

#include "harness/common/build_info.h"
#include "harness/cli/cli.h"

int main(int argc, char** argv) {
  using namespace residency::cli;
  CLI::App app{"residency: model-weight residency engine, simulator, runtime and harness"};
  app.set_version_flag("--version", "residency " + residency::harness::CodeVersion());
  app.require_subcommand(1);
  const std::vector<Subcommand> subcommands = {
      AddReplay(app),
      AddRun(app),
      AddLoad(app),
      AddGenModel(app),
      AddCalibrate(app),
      AddTorture(app),
      AddSweep(app),
      AddMerge(app),
      AddCompare(app),
      AddGate(app),
      AddReport(app),
      AddServe(app),
      AddSlurm(app),
      AddImport(app),
      AddExplain(app),
      AddFidelity(app),
      AddListing(app, "policies", "policies", "List bundled policies"),
      AddListing(app, "profiles", "profiles", "List bundled machine profiles"),
      AddListing(app, "traces", "examples", "List bundled example traces"),
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    for (const Subcommand& s : subcommands)
      if (s.app->parsed()) return s.run();
  } catch (const std::exception& e) {
    std::cerr << "residency: " << e.what() << "\n";
    return 2;
  }
  return 2;
}
