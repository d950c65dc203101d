#include "traces/units.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <utility>
#include <vector>

namespace residency::traces {
namespace {

using Table = std::vector<std::pair<std::string, long double>>;

const Table& SizeUnits() {
  static const Table t = {{"B", 1},       {"KB", 1e3},  {"MB", 1e6},  {"GB", 1e9},
                          {"TB", 1e12},   {"KiB", 1024.0L}, {"MiB", 1048576.0L},
                          {"GiB", 1073741824.0L}, {"TiB", 1099511627776.0L}};
  return t;
}

const Table& TimeUnits() {
  static const Table t = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"min", 60e9}};
  return t;
}

Result<std::int64_t> Parse(const nlohmann::json& v, const std::string& what, const Table& units,
                           const std::string& suffix, const std::string& kind, std::int64_t limit,
                           const char* limit_text) {
  auto bounded = [&](std::int64_t n) -> Result<std::int64_t> {
    if (n > limit)
      return InvalidArgument(what + ": " + std::to_string(n) + " is above the limit of " + limit_text +
                             " (docs/LIMITS.md)");
    return n;
  };
  if (v.is_number_integer()) {
    const auto n = v.get<std::int64_t>();
    if (n < 0) return InvalidArgument(what + ": must be >= 0, got " + std::to_string(n));
    return bounded(n);
  }
  if (v.is_number_unsigned()) return InvalidArgument(what + ": value out of range");
  if (!v.is_string())
    return InvalidArgument(what + ": expected an integer or a string such as \"" + kind + "\"");
  std::string s = v.get<std::string>();
  const std::string original = s;
  if (!suffix.empty()) {
    if (s.size() < suffix.size() || s.compare(s.size() - suffix.size(), suffix.size(), suffix) != 0)
      return InvalidArgument(what + ": \"" + original + "\" must end in " + suffix);
    s.resize(s.size() - suffix.size());
  }
  const char* begin = s.c_str();
  char* end = nullptr;
  const long double number = std::strtold(begin, &end);
  if (end == begin || !std::isfinite(number) || number < 0)
    return InvalidArgument(what + ": \"" + original + "\" does not start with a number >= 0");
  std::string unit(end);
  while (!unit.empty() && unit.front() == ' ') unit.erase(unit.begin());
  for (const auto& [name, scale] : units) {
    if (unit == name) {
      const long double value = number * scale;
      if (value > static_cast<long double>(std::numeric_limits<std::int64_t>::max() / 2))
        return InvalidArgument(what + ": \"" + original + "\" is too large");
      return bounded(static_cast<std::int64_t>(std::llround(value)));
    }
  }
  std::string known;
  for (const auto& [name, scale] : units) known += (known.empty() ? "" : ", ") + name;
  return InvalidArgument(what + ": unknown unit \"" + unit + "\" in \"" + original +
                         "\" (known: " + known + ")");
}

}  // namespace

// Every size, rate and duration is bounded, so that sums and products of a
// few of them cannot overflow (docs/LIMITS.md).
Result<engine::Bytes> ParseBytes(const nlohmann::json& v, const std::string& what) {
  return Parse(v, what, SizeUnits(), "", "6.94 GB", kMaxDeclaredBytes, "1 PiB");
}

Result<engine::Bytes> ParseRate(const nlohmann::json& v, const std::string& what) {
  return Parse(v, what, SizeUnits(), "/s", "7 GB/s", kMaxDeclaredBytes, "1 PiB/s");
}

Result<engine::Nanos> ParseDuration(const nlohmann::json& v, const std::string& what) {
  return Parse(v, what, TimeUnits(), "", "120 ms", kMaxDurationNs, "10^15 ns (11.6 days)");
}

}  // namespace residency::traces
