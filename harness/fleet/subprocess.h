// Runs a program (found on PATH) and collects its exit code, stdout and
// stderr: how the Slurm commands reach sbatch, squeue and scancel.
#pragma once

#include <string>
#include <vector>

#include "runtime/engine/status.h"

namespace residency::fleet {

struct CommandResult {
  int exit_code = -1;  // 128 + N when killed by signal N
  std::string out, err;
};

// NotFound when the program is not on PATH.
Result<CommandResult> RunCommand(const std::vector<std::string>& argv);

// This executable's absolute path (/proc/self/exe).
std::string SelfExecutable();

}  // namespace residency::fleet
