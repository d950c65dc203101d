#include "harness/calibrate/calibrate.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <vector>

#include "harness/calibrate/copy_rates.h"
#include "harness/calibrate/median.h"
#include "runtime/io/host_buffer.h"
#include "runtime/io/input_file.h"
#include "runtime/io/thread_pool.h"
#include "runtime/io/threaded_reader.h"
#include "runtime/safetensors/writer.h"

namespace residency::harness {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kCopyPasses = 7;  // single passes move by +-25 % here

double Seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string Rate(double bytes_per_second) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f GB/s", bytes_per_second / 1e9);
  return buf;
}

// The 1 GiB scratch file. Where the filesystem allows it, it has no name
// (O_TMPFILE, reached through /proc/self/fd), so a calibrate killed by a
// signal leaves nothing in --dir; elsewhere it is a dot file removed on the
// way out.
class ScratchFile {
 public:
  explicit ScratchFile(const std::string& dir) {
    fd_ = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd_ >= 0) {
      path = "/proc/self/fd/" + std::to_string(fd_);
      if (::access(path.c_str(), F_OK) == 0) return;
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    path = (std::filesystem::path(dir) / ".residency-calibrate.safetensors").string();
  }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;
  ~ScratchFile() {
    if (fd_ >= 0) {
      ::close(fd_);
      return;
    }
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }

  std::string path;

 private:
  int fd_ = -1;
};

// Median of `repeats` timed reads of the whole file into `dst`, each after
// dropping the file from the page cache (cold); O_DIRECT or buffered.
Result<double> ColdReadRate(const std::string& path, int threads, std::size_t chunk, bool direct, int repeats,
                            char* dst) {
  RESIDENCY_ASSIGN_OR_RETURN(io::InputFile file, io::InputFile::Open(path, direct));
  io::ThreadedReader reader({threads, chunk, false});
  std::vector<double> rates;
  for (int r = 0; r < repeats; ++r) {
    file.DropCache(0, file.size());
    const auto t0 = Clock::now();
    RESIDENCY_RETURN_IF_ERROR(reader.Read(file, 0, file.size(), dst));
    rates.push_back(file.size() / Seconds(t0));
  }
  return Median(std::move(rates));
}

}  // namespace

Result<traces::Profile> Calibrate(const CalibrateOptions& o, device::DeviceBackend* device,
                                  const Progress& progress) {
  traces::Profile p;
  p.name = o.name;
  p.description = "measured by `residency calibrate`";
  p.ram_bytes = static_cast<engine::Bytes>(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGESIZE);
  p.os_reserve_bytes = 2ll << 30;
  p.cpu_cores = io::CoreCount();
  p.vram_bytes = device ? static_cast<engine::Bytes>(device->capacity_bytes()) : 0;
  const std::string how = "residency calibrate: ";

  // Memory first, while the process has touched little: first-touch faults,
  // prefault and page-locking each on a fresh region, kept until the end so
  // none reuses pages another just freed (on a VM, recycled pages fault
  // several times faster than ones the hypervisor took back). Then memcpy
  // between two of them.
  const std::size_t m = o.memory_bytes;
  {
    RESIDENCY_ASSIGN_OR_RETURN(io::HostBuffer touched, io::HostBuffer::Reserve(m, m));
    ::madvise(touched.data(), m, MADV_NOHUGEPAGE);  // 4 KiB faults, as the profile field means
    auto t0 = Clock::now();
    for (std::size_t at = 0; at < m; at += 4096) static_cast<volatile char*>(touched.data())[at] = 1;
    p.page_fault_ns = static_cast<engine::Nanos>(Seconds(t0) / (m / 4096) * 1e9);
    p.sources["page_fault"] = how + "first touch of 4 KiB pages of fresh memory (THP off)";
    progress("page fault " + std::to_string(p.page_fault_ns) + " ns");

    // Prefault twice: fresh memory here, then (below, after page-locking)
    // memory this process freed a moment ago. They differ on a VM that hands
    // freed pages back to the hypervisor (bench/freed_memory_bench.cc); the
    // profile takes the one `o.prefault` names and the source note keeps both.
    auto prefault_rate = [&](io::HostBuffer& b, io::PrefaultMethod* used) -> Result<double> {
      const auto start = Clock::now();
      RESIDENCY_RETURN_IF_ERROR(b.Prefault(0, m, used));
      return m / Seconds(start);
    };
    RESIDENCY_ASSIGN_OR_RETURN(io::HostBuffer prefaulted, io::HostBuffer::Reserve(m, m));
    io::PrefaultMethod method{};
    RESIDENCY_ASSIGN_OR_RETURN(const double fresh, prefault_rate(prefaulted, &method));

    // Page-locking as the executor does it: through the device where there
    // is one (cudaHostRegister), mlock otherwise.
    std::string why;
    auto lock = [&](void* at) {
      return device ? device->RegisterHost(at, m, &why) : io::LockWithMlock(at, m, &why);
    };
    auto unlock = [&](void* at, io::PinKind kind) {
      if (device) device->UnregisterHost(at, m, kind);
      else io::UnlockMlock(at, m);
    };
    t0 = Clock::now();
    const io::PinKind kind = lock(prefaulted.data());
    const double locked = Seconds(t0);
    if (kind != io::PinKind::kPlain) {
      p.register_ns_per_gib = static_cast<engine::Nanos>(locked / m * (1ull << 30) * 1e9);
      p.sources["register_per_gib"] = how + std::string(io::ToString(kind)) + " of prefaulted memory";
      unlock(prefaulted.data(), kind);
      RESIDENCY_ASSIGN_OR_RETURN(io::HostBuffer unfaulted, io::HostBuffer::Reserve(m, m));
      t0 = Clock::now();
      const io::PinKind k2 = lock(unfaulted.data());
      p.register_unfaulted_ns_per_gib = static_cast<engine::Nanos>(Seconds(t0) / m * (1ull << 30) * 1e9);
      p.sources["register_unfaulted_per_gib"] = how + std::string(io::ToString(k2)) + " of fresh memory";
      unlock(unfaulted.data(), k2);
      progress("page-lock " + std::to_string(p.register_ns_per_gib / 1000000) + " ms/GiB prefaulted, " +
               std::to_string(p.register_unfaulted_ns_per_gib / 1000000) + " ms/GiB unfaulted (" +
               std::string(io::ToString(kind)) + ")");
    } else {
      progress("page-lock not permitted here: " + why);
      p.sources["register_per_gib"] = how + "not measured: " + why;
    }

    // The recycled prefault comes after page-locking, whose unfaulted figure
    // must be taken on fresh memory too, as its source says.
    {
      RESIDENCY_ASSIGN_OR_RETURN(io::HostBuffer freed, io::HostBuffer::Reserve(m, m));
      RESIDENCY_RETURN_IF_ERROR(freed.Prefault(0, m));
    }
    double recycled = 0;
    {
      RESIDENCY_ASSIGN_OR_RETURN(io::HostBuffer reused, io::HostBuffer::Reserve(m, m));
      RESIDENCY_ASSIGN_OR_RETURN(recycled, prefault_rate(reused, nullptr));
    }
    const bool use_fresh = o.prefault == PrefaultMemory::kFresh;
    p.prefault_bytes_per_second_per_thread = static_cast<engine::Bytes>(use_fresh ? fresh : recycled);
    p.sources["prefault_per_thread"] = how + std::string(io::ToString(method)) + ", one thread, of " +
                                       (use_fresh ? "fresh memory (recycled: " + Rate(recycled)
                                                  : "memory freed just before (fresh: " + Rate(fresh)) +
                                       ")";
    progress("prefault " + Rate(recycled) + " recycled, " + Rate(fresh) + " fresh (" +
             std::string(io::ToString(method)) + "; the profile takes " + (use_fresh ? "fresh" : "recycled") + ")");

    std::memcpy(prefaulted.data(), touched.data(), m);
    t0 = Clock::now();
    for (int i = 0; i < 4; ++i) std::memcpy(prefaulted.data(), touched.data(), m);
    p.memcpy_bytes_per_second_per_thread = static_cast<engine::Bytes>(4.0 * m / Seconds(t0));
    p.sources["memcpy_per_thread"] = how + "memcpy between faulted buffers, one thread";
    progress("memcpy " + Rate(p.memcpy_bytes_per_second_per_thread));
  }

  // Disk write: the scratch file itself, fsync'd.
  ScratchFile scratch(o.dir);
  auto t0 = Clock::now();
  RESIDENCY_RETURN_IF_ERROR(safetensors::WriteFile(
      scratch.path, {safetensors::TensorOfBytes("calibrate", o.file_bytes - 4096)}, 7));
  {
    const int fd = ::open(scratch.path.c_str(), O_RDONLY);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
  }
  p.disk_write_bytes_per_second = static_cast<engine::Bytes>(o.file_bytes / Seconds(t0));
  p.sources["disk_write"] = how + "wrote and fsync'd a " + std::to_string(o.file_bytes >> 20) + " MiB file";
  progress("disk write " + Rate(p.disk_write_bytes_per_second));

  // Cold disk reads by concurrency, O_DIRECT where the filesystem allows it
  // and buffered (what the loader does by default), each the median of
  // o.repeats reads into one prefaulted buffer: a virtual disk's rate moves
  // by tens of percent between reads.
  const bool direct_ok = io::InputFile::Open(scratch.path, true).ok();
  {
    RESIDENCY_ASSIGN_OR_RETURN(io::HostBuffer dst, io::HostBuffer::Reserve(o.file_bytes, o.file_bytes));
    RESIDENCY_RETURN_IF_ERROR(dst.Prefault(0, o.file_bytes));
    const std::string median = ", median of " + std::to_string(o.repeats) + " reads";
    for (int threads : o.thread_counts) {
      std::string line = "disk read, " + std::to_string(threads) + " thread(s):";
      if (direct_ok) {
        RESIDENCY_ASSIGN_OR_RETURN(double rate, ColdReadRate(scratch.path, threads, o.read_chunk_bytes, true, o.repeats, dst.data()));
        p.disk_read_bytes_per_second.push_back({threads, static_cast<engine::Bytes>(rate)});
        line += " O_DIRECT " + Rate(rate) + ",";
      }
      RESIDENCY_ASSIGN_OR_RETURN(double rate, ColdReadRate(scratch.path, threads, o.read_chunk_bytes, false, o.repeats, dst.data()));
      p.disk_read_buffered_bytes_per_second.push_back({threads, static_cast<engine::Bytes>(rate)});
      if (!direct_ok) p.disk_read_bytes_per_second.push_back({threads, static_cast<engine::Bytes>(rate)});
      progress(line + " buffered cold " + Rate(rate));
    }
    p.sources["disk_read"] = how + (direct_ok ? "O_DIRECT" : "cold buffered (O_DIRECT refused here)") +
                             " reads of " + std::to_string(o.read_chunk_bytes >> 10) + " KiB chunks by thread count" + median;
    p.sources["disk_read_buffered"] = how + "buffered reads of " + std::to_string(o.read_chunk_bytes >> 10) + " KiB chunks after dropping the file from the "
                                      "page cache, by thread count" + median;
  }

  // Latency: 4 KiB reads at scattered offsets.
  {
    RESIDENCY_ASSIGN_OR_RETURN(io::InputFile file, io::InputFile::Open(scratch.path, direct_ok));
    file.DropCache(0, file.size());
    char* bounce = io::ThreadBounceBuffer(8192);
    char* dst = io::ThreadBounceBuffer(8192);
    const int n = 64;
    t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
      const std::uint64_t off = ((file.size() / n) * i) & ~std::uint64_t{4095};
      RESIDENCY_RETURN_IF_ERROR(file.ReadExact(off, 4096, dst, bounce));
    }
    p.disk_read_latency_ns = static_cast<engine::Nanos>(Seconds(t0) / n * 1e9);
    p.sources["disk_read_latency"] = how + "mean of 64 scattered 4 KiB reads";
    progress("disk latency " + std::to_string(p.disk_read_latency_ns / 1000) + " us");
  }

  // mmap of a cold file, faulted by one thread.
  {
    RESIDENCY_ASSIGN_OR_RETURN(io::InputFile file, io::InputFile::Open(scratch.path, false));
    file.DropCache(0, file.size());
    const int fd = ::open(scratch.path.c_str(), O_RDONLY);
    void* map = ::mmap(nullptr, file.size(), PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (map == MAP_FAILED) return Internal(scratch.path + ": mmap failed");
    t0 = Clock::now();
    volatile char sink = 0;
    for (std::uint64_t at = 0; at < file.size(); at += 4096) sink = sink + static_cast<char*>(map)[at];
    p.mmap_read_bytes_per_second = static_cast<engine::Bytes>(file.size() / Seconds(t0));
    ::munmap(map, file.size());
    p.sources["mmap_read"] = how + "one thread faulting a cold mapping";
    progress("mmap read " + Rate(p.mmap_read_bytes_per_second));
  }

  // Host <-> device copies.
  if (device) {
    RESIDENCY_ASSIGN_OR_RETURN(CopyRates c, MeasureCopyRates(*device, o.memory_bytes, kCopyPasses));
    p.pcie_h2d_pageable_bytes_per_second = static_cast<engine::Bytes>(c.h2d_pageable);
    p.pcie_h2d_pinned_bytes_per_second = static_cast<engine::Bytes>(c.h2d_pinned);
    p.pcie_d2h_bytes_per_second = static_cast<engine::Bytes>(c.d2h);
    p.device_copies_on_cpu = device->copies_on_cpu();
    p.sources["pcie_h2d_pinned"] = how + c.note + " (" + std::string(io::ToString(c.pin)) + " host memory)";
    p.sources["pcie_h2d_pageable"] = how + c.note;
    p.sources["pcie_d2h"] = how + c.note;
    progress("host->device " + Rate(c.h2d_pinned) + " pinned, " + Rate(c.h2d_pageable) + " pageable; device->host " +
             Rate(c.d2h));
  }
  return p;
}

}  // namespace residency::harness
