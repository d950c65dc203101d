#include "harness/calibrate/copy_rates.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "harness/calibrate/median.h"
#include "runtime/executor/real_executor.h"

namespace residency::harness {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kCopyPiece = 64ull << 20;  // the engine's default staging window
constexpr int kCopyRounds = 4;

}  // namespace

Result<CopyRates> MeasureCopyRates(device::DeviceBackend& device, std::size_t bytes, int passes) {
  const std::size_t m = std::min<std::size_t>(bytes, device.capacity_bytes());
  if (m == 0 || passes < 1) return InvalidArgument("copy rates: nothing to measure");
  RESIDENCY_ASSIGN_OR_RETURN(io::HostBuffer host, io::HostBuffer::Reserve(m, m));
  RESIDENCY_RETURN_IF_ERROR(host.Prefault(0, m));
  RESIDENCY_ASSIGN_OR_RETURN(device::DevicePtr dev, device.Alloc(m));
  // As the executor copies: kCopyThreads copiers taking 64 MiB pieces from
  // one queue, so a copier the VM descheduled does not hold the pass back. A
  // pass goes over the region kCopyRounds times, so the tail, where one
  // copier finishes alone, is a small part of it, as in a multi-GB load.
  auto copy_pass = [&](bool h2d) -> Result<double> {
    const std::size_t per_round = (m + kCopyPiece - 1) / kCopyPiece;
    const std::size_t pieces = per_round * kCopyRounds;
    std::atomic<std::size_t> next{0};
    std::vector<Status> results(executor::kCopyThreads);
    const auto t0 = Clock::now();
    std::vector<std::thread> copiers;
    for (int t = 0; t < executor::kCopyThreads; ++t) {
      copiers.emplace_back([&, t] {
        for (std::size_t i = next++; i < pieces && results[t].ok(); i = next++) {
          const std::size_t at = (i % per_round) * kCopyPiece, n = std::min(kCopyPiece, m - at);
          results[t] = h2d ? device.CopyToDevice(dev, at, host.data() + at, n)
                           : device.CopyToHost(host.data() + at, dev, at, n);
        }
      });
    }
    for (std::thread& c : copiers) c.join();
    for (Status& s : results) RESIDENCY_RETURN_IF_ERROR(s);
    return static_cast<double>(m) * kCopyRounds / std::chrono::duration<double>(Clock::now() - t0).count();
  };
  auto time_copy = [&](bool h2d) -> Result<double> {
    RESIDENCY_RETURN_IF_ERROR(copy_pass(h2d).status());
    std::vector<double> rates;
    for (int i = 0; i < passes; ++i) {
      RESIDENCY_ASSIGN_OR_RETURN(double rate, copy_pass(h2d));
      rates.push_back(rate);
    }
    return Median(std::move(rates));
  };
  auto pageable = time_copy(true);
  std::string why;
  const io::PinKind kind = device.RegisterHost(host.data(), m, &why);
  auto pinned = time_copy(true);
  auto d2h = time_copy(false);
  device.UnregisterHost(host.data(), m, kind);
  device.Free(dev);
  if (!pageable.ok()) return pageable.status();
  if (!pinned.ok()) return pinned.status();
  if (!d2h.ok()) return d2h.status();
  CopyRates r;
  r.h2d_pageable = pageable.value();
  r.h2d_pinned = pinned.value();
  r.d2h = d2h.value();
  r.pin = kind;
  r.note = std::to_string(executor::kCopyThreads) + " concurrent copies of 64 MiB pieces, " +
           std::to_string(kCopyRounds) + " times over " + std::to_string(m >> 20) + " MiB, to/from " + device.name() +
           ", median of " + std::to_string(passes) + " passes";
  return r;
}

}  // namespace residency::harness
