#include "harness/common/progress_line.h"

#include <unistd.h>

namespace residency::sweep {

ProgressLine::ProgressLine(std::FILE* out, std::string label, OffTerminal off_terminal)
    : out_(out), label_(std::move(label)), tty_(isatty(fileno(out)) == 1),
      silent_(!tty_ && off_terminal == OffTerminal::kNothing) {}

void ProgressLine::Update(std::size_t done, std::size_t total, const std::string& detail) {
  if (silent_) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0;
  if (tty_) {
    constexpr int kWidth = 30;
    const int filled = total ? static_cast<int>(kWidth * done / total) : kWidth;
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::fprintf(out_, "\r%s [%s] %zu/%zu  %.1f/s  ETA %.0f s  %s\x1b[K", label_.c_str(), bar.c_str(), done, total,
                 rate, eta, detail.c_str());
    drawn_ = true;
  } else {
    const int tenth = total ? static_cast<int>(10 * done / total) : 10;
    if (tenth == last_tenth_) return;
    last_tenth_ = tenth;
    std::fprintf(out_, "%s: %zu/%zu (%d%%) %.1f/s %s\n", label_.c_str(), done, total, tenth * 10, rate,
                 detail.c_str());
  }
  std::fflush(out_);
}

void ProgressLine::Finish() {
  if (silent_) return;
  if (tty_ && drawn_) std::fputc('\n', out_);
  std::fflush(out_);
}

}  // namespace residency::sweep
