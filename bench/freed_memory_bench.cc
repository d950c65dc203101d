// How fast freshly allocated memory faults in, by how long ago the memory
// it reuses was freed. On a VM whose balloon reports free pages to the
// hypervisor (virtio_balloon free page reporting), freed guest pages are
// handed back within seconds and the next first touch pays the host's fault
// as well: docs/FIDELITY.md uses this to explain prefaults that run at a
// fraction of the calibrated rate. On bare metal every row reads the same.
//
//   residency_freed_memory_bench [--hold 8] [--touch 4] [--waits 0,1,3,10,20]   (GiB, seconds)
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "runtime/io/host_buffer.h"

namespace {

using Clock = std::chrono::steady_clock;

// GB/s of one thread prefaulting a new `bytes` region; the region is freed after.
double PrefaultRate(std::size_t bytes) {
  auto buffer = residency::io::HostBuffer::Reserve(bytes, bytes);
  if (!buffer.ok()) throw std::runtime_error(buffer.status().ToString());
  const auto t0 = Clock::now();
  residency::Status s = buffer->Prefault(0, bytes);
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!s.ok()) throw std::runtime_error(s.ToString());
  return static_cast<double>(bytes) / seconds / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Prefault rate of new memory by how long ago the memory it reuses was freed"};
  double hold_gib = 8, touch_gib = 4;
  std::vector<int> waits{0, 1, 3, 10, 20};
  app.add_option("--hold", hold_gib, "GiB touched and freed before each row")->capture_default_str();
  app.add_option("--touch", touch_gib, "GiB prefaulted after the wait (keep it <= --hold)")->capture_default_str();
  app.add_option("--waits", waits, "seconds between the free and the prefault")->delimiter(',');
  CLI11_PARSE(app, argc, argv);
  const auto gib = [](double g) { return static_cast<std::size_t>(g * (1ull << 30)); };
  try {
    std::printf("| freed %.1f GiB, then waited | prefault of %.1f GiB, one thread |\n|---|---|\n", hold_gib,
                touch_gib);
    for (int wait : waits) {
      PrefaultRate(gib(hold_gib));  // touched, then freed on return
      std::this_thread::sleep_for(std::chrono::seconds(wait));
      std::printf("| %d s | %.2f GB/s |\n", wait, PrefaultRate(gib(touch_gib)));
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::cerr << "residency_freed_memory_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
