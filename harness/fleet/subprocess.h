// Runs a program (found on PATH) and collects its exit code, stdout and
// stderr: how the Slurm commands reach sbatch, squeue and scancel.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "runtime/base/status.h"

namespace residency::fleet {

struct CommandResult {
  int exit_code = -1;  // 128 + N when killed by signal N
  std::string out, err;
};

// NotFound when the program is not on PATH. A program still running after
// `timeout` is killed (SIGKILL) and the error names it and the limit: a hung
// squeue must not hang `slurm status`.
Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(60));

// This executable's absolute path (/proc/self/exe).
std::string SelfExecutable();

}  // namespace residency::fleet
