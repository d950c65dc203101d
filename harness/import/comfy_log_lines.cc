#include "harness/import/comfy_log_lines.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace residency::import {
namespace {

bool Digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }
bool Alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool StartsWith(const std::string& s, std::size_t at, const char* p) { return s.compare(at, std::strlen(p), p) == 0; }

// `n` digits at `i`, or npos.
std::size_t Digits(const std::string& s, std::size_t i, int n) {
  for (int k = 0; k < n; ++k, ++i)
    if (i >= s.size() || !Digit(s[i])) return std::string::npos;
  return i;
}

// A clock "HH:MM[:SS[.fff|,fff]][Z]" at `i` (H may be one digit); the index
// past it, or npos.
std::size_t SkipClock(const std::string& s, std::size_t i) {
  std::size_t j = Digits(s, i, 1);
  if (j == std::string::npos) return j;
  if (j < s.size() && Digit(s[j])) ++j;
  if (j >= s.size() || s[j] != ':' || (j = Digits(s, j + 1, 2)) == std::string::npos) return std::string::npos;
  if (j < s.size() && s[j] == ':' && Digits(s, j + 1, 2) != std::string::npos) j += 3;
  if (j + 1 < s.size() && (s[j] == '.' || s[j] == ',') && Digit(s[j + 1])) {
    ++j;
    while (j < s.size() && Digit(s[j])) ++j;  // milliseconds to nanoseconds (docker --timestamps)
  }
  if (j < s.size() && s[j] == 'Z') ++j;  // UTC, as docker prints it
  return j;
}

// "YYYY-MM-DD[T or space]clock" at `i`, or a bare clock; the index past it,
// or npos. `iso_only`: only the "YYYY-MM-DDTclock" form.
std::size_t SkipDateTime(const std::string& s, std::size_t i, bool iso_only = false) {
  std::size_t j = Digits(s, i, 4);
  if (j != std::string::npos && j < s.size() && s[j] == '-' && (j = Digits(s, j + 1, 2)) != std::string::npos &&
      j < s.size() && s[j] == '-' && (j = Digits(s, j + 1, 2)) != std::string::npos && j < s.size() &&
      (s[j] == 'T' || (!iso_only && s[j] == ' ')))
    return SkipClock(s, j + 1);
  return iso_only ? std::string::npos : SkipClock(s, i);
}

std::size_t SkipSpaces(const std::string& s, std::size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return i;
}

// ANSI colour codes, raw ("ESC[32m") or as a Windows console pastes them ("←[32m").
std::string WithoutAnsi(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    std::size_t j = std::string::npos;
    if (s[i] == '\x1b' && i + 1 < s.size() && s[i + 1] == '[') j = i + 2;
    else if (StartsWith(s, i, "\xe2\x86\x90[")) j = i + 4;  // U+2190, then '['
    if (j != std::string::npos) {
      while (j < s.size() && (Digit(s[j]) || s[j] == ';')) ++j;
      if (j < s.size() && Alpha(s[j])) {
        i = j + 1;
        continue;
      }
    }
    out += s[i++];
  }
  return out;
}

// Every "YYYY-MM-DDTclock - " a per-write logger glued inside or at the end of
// a line (the ISO form only: it cannot be a log's own text).
std::string WithoutGluedIsoPrefixes(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    if (Digit(s[i])) {
      const std::size_t j = SkipDateTime(s, i, true);
      if (j != std::string::npos) {
        std::size_t k = SkipSpaces(s, j);
        if (k < s.size() && s[k] == '-') k = SkipSpaces(s, k + 1);
        if (k == s.size() || k > j) {  // " - " follows, or the line ends
          i = k;
          continue;
        }
      }
    }
    out += s[i++];
  }
  return out;
}

// One leading prefix off `s`, or false when there is none.
bool StripOnePrefix(std::string& s) {
  const std::size_t i = SkipSpaces(s, 0);
  if (i < s.size() && s[i] == '[') {
    const std::size_t close = s.find(']', i);
    if (close == std::string::npos || close - i > 48) return false;
    const std::string inside = s.substr(i + 1, close - i - 1);
    static const char* kLevels[] = {"INFO", "WARNING", "WARN", "ERROR", "DEBUG", "CRITICAL",
                                    "Info", "Warning", "Error", "Debug", "Init", "Verbose"};
    bool known = SkipDateTime(inside, 0) == inside.size();
    for (const char* l : kLevels) known = known || inside == l;
    known = known || (inside.rfind("ComfyUI", 0) == 0 && inside.find("/STD") != std::string::npos);
    if (!known) return false;
    s.erase(0, SkipSpaces(s, close + 1));
    return true;
  }
  if (i < s.size() && Digit(s[i])) {
    std::size_t j = SkipDateTime(s, i);
    if (j == std::string::npos) return false;
    std::size_t k = SkipSpaces(s, j);
    if (k < s.size() && s[k] == '-' && k + 1 < s.size() && s[k + 1] == ' ') {
      k = SkipSpaces(s, k + 1);
      // Python logging: "DATE - root - INFO - message".
      const std::size_t a = s.find(" - ", k);
      if (a != std::string::npos && a - k < 32) {
        const std::size_t b = s.find(" - ", a + 3);
        const std::string level = b == std::string::npos ? "" : s.substr(a + 3, b - a - 3);
        if (level == "INFO" || level == "WARNING" || level == "ERROR" || level == "DEBUG") k = b + 3;
      }
    }
    if (k == j && k < s.size()) return false;  // "12:30" followed by text: not a prefix
    s.erase(0, k);
    return true;
  }
  // docker compose: "comfyui-1  | message".
  std::size_t j = i;
  while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_' || s[j] == '.' || s[j] == '-'))
    ++j;
  if (j > i && j - i < 64 && Digit(s[j - 1]) && s.find('-', i) < j) {
    std::size_t k = SkipSpaces(s, j);
    if (k > j && k < s.size() && s[k] == '|') {
      s.erase(0, k + 1 < s.size() && s[k + 1] == ' ' ? k + 2 : k + 1);
      return true;
    }
  }
  return false;
}

// The numbers in `s` (decimal or scientific notation), in order.
std::vector<double> Numbers(const std::string& s) {
  std::vector<double> out;
  for (std::size_t i = 0; i < s.size();) {
    if (Digit(s[i]) || (s[i] == '.' && i + 1 < s.size() && Digit(s[i + 1]))) {
      std::size_t j = i;
      while (j < s.size() && (Digit(s[j]) || s[j] == '.')) ++j;
      if (j + 1 < s.size() && (s[j] == 'e' || s[j] == 'E') && (Digit(s[j + 1]) || s[j + 1] == '+' || s[j + 1] == '-')) {
        ++j;
        if (s[j] == '+' || s[j] == '-') ++j;
        while (j < s.size() && Digit(s[j])) ++j;
      }
      const std::string tok = s.substr(i, std::min<std::size_t>(j - i, 64));
      char* end = nullptr;
      const double v = std::strtod(tok.c_str(), &end);
      if (end != tok.c_str() && std::isfinite(v)) out.push_back(v);
      i = j;
    } else {
      ++i;
    }
  }
  return out;
}

// The number just before `unit` ("12.5 MB loaded", "8339MB Staged").
std::optional<double> NumberBefore(const std::string& s, const std::string& unit) {
  const auto at = s.find(unit);
  if (at == std::string::npos) return std::nullopt;
  std::size_t j = at;
  while (j > 0 && s[j - 1] == ' ') --j;
  std::size_t i = j;
  while (i > 0 && (Digit(s[i - 1]) || s[i - 1] == '.' || s[i - 1] == 'e' || s[i - 1] == '+' || s[i - 1] == '-')) --i;
  const std::vector<double> n = Numbers(s.substr(i, j - i));
  if (n.empty()) return std::nullopt;
  return n.back();
}

// A class name: letters, digits and _ . - (at most 64).
std::string WordAt(const std::string& s, std::size_t i) {
  i = SkipSpaces(s, i);
  std::size_t j = i;
  while (j < s.size() && j - i < 64 &&
         (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_' || s[j] == '.' || s[j] == '-'))
    ++j;
  return s.substr(i, j - i);
}

// The rest of the line as printable ASCII (it ends up in JSON, which must be
// valid UTF-8; a log may hold any bytes).
std::string RestAfter(const std::string& s, std::size_t at, std::size_t key_len) {
  std::string r = s.substr(SkipSpaces(s, at + key_len), 200);
  for (char& c : r)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  while (!r.empty() && r.back() == ' ') r.pop_back();
  return r;
}

// "H:MM:SS", "MM:SS" or "D days, H:MM:SS" -> seconds; -1 when unreadable or
// over a year (noise, not a timing).
double ClockSeconds(const std::string& t) {
  double s = 0;
  int parts = 0;
  for (double part : Numbers(t)) {
    if (part < 0 || part > 1e7 || part != std::floor(part)) return -1;
    s = s * 60 + part;
    if (++parts > 3 || s > 365.0 * 24 * 3600) return -1;
  }
  return parts >= 2 ? s : -1;
}

// A tqdm bar in `s` at "%|"; fills `out` and returns the index past its "]".
std::optional<std::size_t> ParseBar(const std::string& s, LogLine& out) {
  const std::size_t pct = s.find("%|");
  if (pct == std::string::npos) return std::nullopt;
  // The bar's closing '|'; some copies lose the block characters and that
  // '|' with them ("100%| 8/8 [00:23<00:00, 2.94s/it]").
  const std::size_t first_open = s.find('[', pct + 2);
  std::size_t bar_end = s.find('|', pct + 2);
  if (bar_end == std::string::npos || (first_open != std::string::npos && bar_end > first_open)) bar_end = pct + 1;
  const std::size_t open = s.find('[', bar_end);
  const std::size_t slash = s.find('/', bar_end);
  if (open == std::string::npos || slash == std::string::npos || slash > open) return std::nullopt;
  const std::vector<double> counts = Numbers(s.substr(bar_end + 1, open - bar_end - 1));
  if (counts.size() < 2 || counts[0] < 0 || counts[1] < 1 || counts[1] > 1e7 || counts[0] > counts[1]) return std::nullopt;
  out.kind = LineKind::kProgress;
  out.count = static_cast<long long>(counts[0]);
  out.total = static_cast<long long>(counts[1]);
  const std::size_t lt = s.find('<', open);
  const std::size_t close = s.find(']', open);
  if (lt != std::string::npos && (close == std::string::npos || lt < close)) {
    out.elapsed_s = ClockSeconds(s.substr(open + 1, lt - open - 1));
    // The rate after the remaining time: "00:01<00:00, 12.12it/s" or "1.50s/it".
    const std::string tail = s.substr(lt, close == std::string::npos ? std::string::npos : close - lt);
    const std::size_t comma = tail.find(',');
    if (comma != std::string::npos) {
      const std::string rate = tail.substr(comma + 1);
      const std::vector<double> x = Numbers(rate);
      if (!x.empty() && x[0] > 0 && x[0] < 1e9) {
        if (rate.find("it/s") != std::string::npos) out.seconds_per_it = 1.0 / x[0];
        else if (rate.find("s/it") != std::string::npos) out.seconds_per_it = x[0];
      }
    }
  }
  // A label before the percentage ("Sampling: 40%|") marks another tool's bar.
  std::size_t p = pct;
  while (p > 0 && (Digit(s[p - 1]) || s[p - 1] == ' ')) --p;
  for (std::size_t k = 0; k < p; ++k) out.labelled = out.labelled || Alpha(s[k]);
  return close == std::string::npos ? s.size() : close + 1;
}

void ClassifyText(const std::string& s, std::vector<LogLine>& out) {
  auto add = [&](LineKind kind) -> LogLine& {
    out.push_back(LogLine{kind});
    return out.back();
  };
  std::size_t at;
  for (at = s.find("got prompt"); at != std::string::npos; at = s.find("got prompt", at + 10)) add(LineKind::kGotPrompt);
  if ((at = s.find("Requested to load")) != std::string::npos) {
    add(LineKind::kRequested).text = WordAt(s, at + 17);
  } else if (s.find("Unloaded partially") != std::string::npos) {  // before "loaded partially": it contains it
    LogLine& l = add(LineKind::kUnloadedPartially);
    if (auto f = NumberBefore(s, "MB freed")) l.a = *f, l.has_a = true;
    if (auto r = NumberBefore(s, "MB remains")) l.b = *r, l.has_b = true;
  } else if ((at = s.find("loaded partially")) != std::string::npos) {
    LogLine& l = add(LineKind::kLoadedPartially);
    if (auto on = NumberBefore(s, "MB loaded")) {
      l.a = *on, l.has_a = true;
      if (auto off = NumberBefore(s, "MB offloaded")) l.b = *off, l.has_b = true;
    } else {
      // "loaded partially USABLE LOADED PATCHES": the size is not stated.
      const std::vector<double> n = Numbers(s.substr(at + 16));
      if (n.size() >= 2) l.a = n[1], l.has_a = true;
    }
  } else if ((at = s.find("loaded completely")) != std::string::npos) {
    LogLine& l = add(LineKind::kLoadedCompletely);
    if (auto mb = NumberBefore(s, "MB loaded")) {
      l.a = *mb, l.has_a = true;
    } else {
      // "loaded completely USABLE LOADED True".
      const std::vector<double> n = Numbers(s.substr(at + 17));
      if (n.size() >= 2) l.a = n[1], l.has_a = true;
    }
  } else if ((at = s.find("loading in lowvram mode")) != std::string::npos) {
    LogLine& l = add(LineKind::kLowvramMode);
    const std::vector<double> n = Numbers(s.substr(at + 23));
    if (!n.empty()) l.a = n[0], l.has_a = true;
  } else if ((at = s.find("prepared for dynamic VRAM loading")) != std::string::npos) {
    LogLine& l = add(LineKind::kDynamic);
    const std::size_t m = s.rfind("Model ", at);
    if (m != std::string::npos) l.text = WordAt(s, m + 6);
    if (auto mb = NumberBefore(s, "MB Staged")) l.a = *mb, l.has_a = true;
  } else if ((at = s.find("Loading ")) != std::string::npos && s.find(" new model", at) != std::string::npos) {
    LogLine& l = add(LineKind::kLoadingNewModels);
    const std::vector<double> n = Numbers(s.substr(at + 8, 12));
    if (!n.empty()) l.a = n[0], l.has_a = true;
  } else if ((at = s.find("Prompt executed in")) != std::string::npos) {
    LogLine& l = add(LineKind::kPromptExecuted);
    const std::string rest = s.substr(at + 18, 64);
    const double clock = rest.find(':') != std::string::npos ? ClockSeconds(rest) : -1;
    const std::vector<double> n = Numbers(rest);
    if (clock >= 0) l.a = clock, l.has_a = true;  // "HH:MM:SS" (past 10 minutes), no unit
    else if (!n.empty() && n[0] >= 0 && n[0] < 365.0 * 24 * 3600) l.a = n[0], l.has_a = true;
  } else if ((at = s.find("Total VRAM")) != std::string::npos && s.find("total RAM") != std::string::npos) {
    LogLine& l = add(LineKind::kMachine);
    if (auto v = NumberBefore(s, "MB, total RAM")) l.a = *v, l.has_a = true;
    const std::string ram = s.substr(s.find("total RAM"));
    if (auto r = NumberBefore(ram, "MB")) l.b = *r, l.has_b = true;
  } else if (s.rfind("Device: ", 0) == 0) {
    add(LineKind::kDevice).text = RestAfter(s, 0, 8);
  } else if ((at = s.find("Set vram state to:")) != std::string::npos) {
    add(LineKind::kVramState).text = WordAt(s, at + 18);
  } else if (s.rfind("pytorch version:", 0) == 0) {
    add(LineKind::kTorchVersion).text = WordAt(s, 16);
  } else if (s.rfind("ComfyUI version:", 0) == 0) {
    add(LineKind::kServerVersion).text = WordAt(s, 16);
  } else if (s.rfind("model_type ", 0) == 0) {
    add(LineKind::kDiskRead);
  } else if (s.find("!!! Exception during processing") != std::string::npos) {
    add(LineKind::kException).text = "an exception";
  } else if (s.find("Processing interrupted") != std::string::npos) {
    add(LineKind::kException).text = "interrupted";
  }
}

}  // namespace

std::string StripPrefixes(const std::string& line) {
  std::string s = WithoutGluedIsoPrefixes(WithoutAnsi(line));
  for (int i = 0; i < 8 && StripOnePrefix(s); ++i) {
  }
  const std::size_t first = SkipSpaces(s, 0);
  std::size_t last = s.size();
  while (last > first && (s[last - 1] == ' ' || s[last - 1] == '\t' || s[last - 1] == '\r')) --last;
  return s.substr(first, last - first);
}

std::vector<LogLine> ClassifyLine(const std::string& raw) {
  std::vector<LogLine> out;
  std::size_t start = 0;
  while (start <= raw.size()) {
    const std::size_t cr = raw.find('\r', start);
    const std::string segment = StripPrefixes(raw.substr(start, cr == std::string::npos ? std::string::npos : cr - start));
    LogLine bar{LineKind::kProgress};
    if (auto past = ParseBar(segment, bar)) {
      out.push_back(bar);
      // A later write glued to the bar ("...1.50s/it]got prompt").
      ClassifyText(StripPrefixes(segment.substr(*past)), out);
    } else {
      ClassifyText(segment, out);
    }
    if (cr == std::string::npos) break;
    start = cr + 1;
  }
  return out;
}

}  // namespace residency::import
