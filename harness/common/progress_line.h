// Progress of long work on stderr: a redrawn bar on a terminal; otherwise
// (CI logs, pipes) a plain line per tenth of the work, or nothing.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>

namespace residency::sweep {

// What a ProgressLine writes when `out` is not a terminal.
enum class OffTerminal { kPlainLines, kNothing };

class ProgressLine {
 public:
  ProgressLine(std::FILE* out, std::string label, OffTerminal off_terminal = OffTerminal::kPlainLines);
  void Update(std::size_t done, std::size_t total, const std::string& detail);
  void Finish();

 private:
  std::FILE* out_;
  std::string label_;
  bool tty_;
  bool silent_;  // not a terminal, and asked for nothing there
  int last_tenth_ = -1;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace residency::sweep
