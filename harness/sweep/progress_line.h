// Progress of long work on stderr: a redrawn bar on a terminal, a plain line
// per tenth of the work otherwise (CI logs, pipes).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>

namespace residency::sweep {

class ProgressLine {
 public:
  ProgressLine(std::FILE* out, std::string label, bool force_plain = false);
  void Update(std::size_t done, std::size_t total, const std::string& detail);
  void Finish();

 private:
  std::FILE* out_;
  std::string label_;
  bool tty_;
  int last_tenth_ = -1;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace residency::sweep
