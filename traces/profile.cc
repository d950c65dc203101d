#include "traces/profile.h"
#include "runtime/io/whole_file.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "traces/json_fields.h"

namespace residency::traces {

namespace {

// Throughput at `concurrency` from a sorted table: linear between points,
// held flat outside them.
double Interpolate(const std::vector<std::pair<int, Bytes>>& t, int concurrency) {
  if (t.empty()) return 1.0;
  if (concurrency <= t.front().first) return static_cast<double>(t.front().second);
  for (std::size_t i = 1; i < t.size(); ++i) {
    if (concurrency <= t[i].first) {
      const double f = static_cast<double>(concurrency - t[i - 1].first) /
                       static_cast<double>(t[i].first - t[i - 1].first);
      return static_cast<double>(t[i - 1].second) +
             f * static_cast<double>(t[i].second - t[i - 1].second);
    }
  }
  return static_cast<double>(t.back().second);
}

// A {"concurrency": rate} object; `required` false lets it be absent.
Status ParseRateTable(const JsonFields& f, const char* field, bool required,
                      std::vector<std::pair<int, Bytes>>& out) {
  if (!f.Has(field) && !required) return Status::Ok();
  if (!f.Has(field) || !f.at(field).is_object() || f.at(field).empty())
    return InvalidArgument(f.Where(field) + " must map concurrency to throughput, e.g. {\"1\": \"3 GB/s\"}");
  for (auto it = f.at(field).begin(); it != f.at(field).end(); ++it) {
    int n = 0;
    try {
      std::size_t used = 0;
      n = std::stoi(it.key(), &used);
      if (used != it.key().size() || n < 1 || n > 4096) throw std::invalid_argument("range");
    } catch (const std::exception&) {
      return InvalidArgument(f.Where(field) + ": key '" + it.key() + "' must be a concurrency in [1, 4096]");
    }
    RESIDENCY_ASSIGN_OR_RETURN(Bytes rate, ParseRate(it.value(), f.Where(field) + "[" + it.key() + "]"));
    if (rate <= 0) return InvalidArgument(f.Where(field) + "[" + it.key() + "] must be > 0");
    out.emplace_back(n, rate);
  }
  std::sort(out.begin(), out.end());
  return Status::Ok();
}

nlohmann::ordered_json WriteRateTable(const std::vector<std::pair<int, Bytes>>& t) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (auto [n, rate] : t) j[std::to_string(n)] = std::to_string(rate) + " B/s";
  return j;
}

}  // namespace

double Profile::DiskReadBytesPerSecond(int concurrency) const {
  return Interpolate(disk_read_bytes_per_second, concurrency);
}

double Profile::DiskReadBufferedBytesPerSecond(int concurrency) const {
  return disk_read_buffered_bytes_per_second.empty()
             ? DiskReadBytesPerSecond(concurrency)
             : Interpolate(disk_read_buffered_bytes_per_second, concurrency);
}

engine::MachineLimits Profile::Limits() const {
  engine::MachineLimits m;
  m.ram_bytes = ram_bytes;
  m.swap_bytes = swap_bytes;
  m.os_reserve_bytes = os_reserve_bytes;
  // On a unified machine `vram`, when given, caps device allocations.
  m.device_bytes = unified ? (vram_bytes > 0 ? vram_bytes : ram_bytes) : vram_bytes;
  m.unified = unified;
  m.disk_read_bytes_per_second =
      std::max<Bytes>(1, static_cast<Bytes>(DiskReadBytesPerSecond(8)));
  return m;
}

Result<Profile> ParseProfile(const std::string& text, const std::string& origin) {
  RESIDENCY_ASSIGN_OR_RETURN(nlohmann::json j, ParseJsonObject(text, origin));
  JsonFields f(j, origin);
  RESIDENCY_RETURN_IF_ERROR(f.Allow(
      {"name", "description", "ram", "swap", "os_reserve", "vram", "unified", "device_reclaims_page_cache", "cpu_cores",
       "disk_read", "disk_read_buffered", "disk_read_latency", "disk_write", "mmap_read", "pcie_h2d_pinned",
       "pcie_h2d_pageable", "pcie_d2h", "device_copies_on_cpu", "memcpy_per_thread", "page_fault", "prefault_per_thread",
       "register_per_gib", "register_unfaulted_per_gib", "sources"}));
  Profile p;
  RESIDENCY_RETURN_IF_ERROR(f.String("name", p.name, true));
  RESIDENCY_RETURN_IF_ERROR(f.String("description", p.description, false));
  RESIDENCY_RETURN_IF_ERROR(f.Size("ram", p.ram_bytes, true));
  RESIDENCY_RETURN_IF_ERROR(f.Size("swap", p.swap_bytes, false));
  RESIDENCY_RETURN_IF_ERROR(f.Size("os_reserve", p.os_reserve_bytes, true));
  RESIDENCY_RETURN_IF_ERROR(f.Bool("unified", p.unified));
  RESIDENCY_RETURN_IF_ERROR(f.Size("vram", p.vram_bytes, !p.unified));
  RESIDENCY_RETURN_IF_ERROR(f.Bool("device_reclaims_page_cache", p.device_reclaims_page_cache));
  if (f.Has("device_reclaims_page_cache") && !p.unified)
    return InvalidArgument(f.Where("device_reclaims_page_cache") +
                           " applies to unified profiles only (a discrete card has its own memory)");
  RESIDENCY_RETURN_IF_ERROR(f.Int("cpu_cores", p.cpu_cores, 1, 4096));
  RESIDENCY_RETURN_IF_ERROR(ParseRateTable(f, "disk_read", true, p.disk_read_bytes_per_second));
  RESIDENCY_RETURN_IF_ERROR(
      ParseRateTable(f, "disk_read_buffered", false, p.disk_read_buffered_bytes_per_second));
  RESIDENCY_RETURN_IF_ERROR(f.Duration("disk_read_latency", p.disk_read_latency_ns, true));
  RESIDENCY_RETURN_IF_ERROR(f.Rate("disk_write", p.disk_write_bytes_per_second, true));
  RESIDENCY_RETURN_IF_ERROR(f.Rate("mmap_read", p.mmap_read_bytes_per_second, true));
  RESIDENCY_RETURN_IF_ERROR(f.Rate("pcie_h2d_pinned", p.pcie_h2d_pinned_bytes_per_second, !p.unified));
  RESIDENCY_RETURN_IF_ERROR(f.Rate("pcie_h2d_pageable", p.pcie_h2d_pageable_bytes_per_second, !p.unified));
  RESIDENCY_RETURN_IF_ERROR(f.Rate("pcie_d2h", p.pcie_d2h_bytes_per_second, !p.unified));
  RESIDENCY_RETURN_IF_ERROR(f.Bool("device_copies_on_cpu", p.device_copies_on_cpu));
  RESIDENCY_RETURN_IF_ERROR(f.Rate("memcpy_per_thread", p.memcpy_bytes_per_second_per_thread, true));
  RESIDENCY_RETURN_IF_ERROR(f.Duration("page_fault", p.page_fault_ns, true));
  RESIDENCY_RETURN_IF_ERROR(f.Rate("prefault_per_thread", p.prefault_bytes_per_second_per_thread, true));
  RESIDENCY_RETURN_IF_ERROR(f.Duration("register_per_gib", p.register_ns_per_gib, true));
  RESIDENCY_RETURN_IF_ERROR(f.Duration("register_unfaulted_per_gib", p.register_unfaulted_ns_per_gib, true));
  RESIDENCY_RETURN_IF_ERROR(f.Sources(p.sources));
  // Cross-field rules.
  if (p.os_reserve_bytes >= p.ram_bytes)
    return InvalidArgument(origin + ": os_reserve must be smaller than ram");
  if (p.unified) {
    // One pool: copies are memcpys; PCIe figures default to the memcpy rate.
    if (p.pcie_h2d_pinned_bytes_per_second == 0) p.pcie_h2d_pinned_bytes_per_second = p.memcpy_bytes_per_second_per_thread;
    if (p.pcie_h2d_pageable_bytes_per_second == 0) p.pcie_h2d_pageable_bytes_per_second = p.memcpy_bytes_per_second_per_thread;
    if (p.pcie_d2h_bytes_per_second == 0) p.pcie_d2h_bytes_per_second = p.memcpy_bytes_per_second_per_thread;
    if (p.vram_bytes > p.ram_bytes)
      return InvalidArgument(f.Where("vram") + " on a unified profile caps device allocations out of ram; it cannot "
                             "exceed ram (" + std::to_string(p.ram_bytes) + " bytes)");
  } else if (p.vram_bytes <= 0) {
    return InvalidArgument(f.Where("vram") + " must be > 0 unless unified is true");
  }
  for (auto [name, value] : {std::pair{"disk_write", p.disk_write_bytes_per_second},
                             std::pair{"mmap_read", p.mmap_read_bytes_per_second},
                             std::pair{"pcie_h2d_pinned", p.pcie_h2d_pinned_bytes_per_second},
                             std::pair{"pcie_h2d_pageable", p.pcie_h2d_pageable_bytes_per_second},
                             std::pair{"pcie_d2h", p.pcie_d2h_bytes_per_second},
                             std::pair{"memcpy_per_thread", p.memcpy_bytes_per_second_per_thread},
                             std::pair{"prefault_per_thread", p.prefault_bytes_per_second_per_thread}})
    if (value <= 0) return InvalidArgument(f.Where(name) + " must be > 0");
  return p;
}

Result<Profile> ReadProfileFile(const std::string& path) {
  RESIDENCY_ASSIGN_OR_RETURN(std::string text, io::ReadWholeFile(path));
  return ParseProfile(text, path);
}

std::string WriteProfile(const Profile& p) {
  nlohmann::ordered_json j;
  j["name"] = p.name;
  j["description"] = p.description;
  j["ram"] = p.ram_bytes;
  j["swap"] = p.swap_bytes;
  j["os_reserve"] = p.os_reserve_bytes;
  j["vram"] = p.vram_bytes;
  j["unified"] = p.unified;
  if (p.unified) j["device_reclaims_page_cache"] = p.device_reclaims_page_cache;
  j["cpu_cores"] = p.cpu_cores;
  j["disk_read"] = WriteRateTable(p.disk_read_bytes_per_second);
  if (!p.disk_read_buffered_bytes_per_second.empty())
    j["disk_read_buffered"] = WriteRateTable(p.disk_read_buffered_bytes_per_second);
  j["disk_read_latency"] = p.disk_read_latency_ns;
  j["disk_write"] = std::to_string(p.disk_write_bytes_per_second) + " B/s";
  j["mmap_read"] = std::to_string(p.mmap_read_bytes_per_second) + " B/s";
  j["pcie_h2d_pinned"] = std::to_string(p.pcie_h2d_pinned_bytes_per_second) + " B/s";
  j["pcie_h2d_pageable"] = std::to_string(p.pcie_h2d_pageable_bytes_per_second) + " B/s";
  j["pcie_d2h"] = std::to_string(p.pcie_d2h_bytes_per_second) + " B/s";
  if (p.device_copies_on_cpu) j["device_copies_on_cpu"] = true;
  j["memcpy_per_thread"] = std::to_string(p.memcpy_bytes_per_second_per_thread) + " B/s";
  j["page_fault"] = p.page_fault_ns;
  j["prefault_per_thread"] = std::to_string(p.prefault_bytes_per_second_per_thread) + " B/s";
  j["register_per_gib"] = p.register_ns_per_gib;
  j["register_unfaulted_per_gib"] = p.register_unfaulted_ns_per_gib;
  j["sources"] = p.sources;
  return j.dump(2) + "\n";
}

}  // namespace residency::traces
