// `residency calibrate`: measure this machine, write a profile.
#include <cstdio>
#include <iostream>
#include <memory>

#include "harness/calibrate/calibrate.h"
#include "harness/cli/cli.h"
#include "harness/cli/device_choice.h"

namespace residency::cli {
namespace {

struct CalibrateArgs {
  std::string out;
  std::string device = "host";
  std::size_t device_capacity = 1ull << 30;
  std::string prefault_memory = "recycled";
  harness::CalibrateOptions options;
};

int RunCalibrate(CalibrateArgs& a) {
  a.options.prefault = a.prefault_memory == "fresh" ? harness::PrefaultMemory::kFresh : harness::PrefaultMemory::kRecycled;
  auto device = MakeDevice(a.device, a.device_capacity);
  if (!device.ok()) return Fail(device.status());
  std::fprintf(stderr, "calibrating with a %llu MiB scratch file in %s...\n",
               static_cast<unsigned long long>(a.options.file_bytes >> 20), a.options.dir.c_str());
  auto profile = harness::Calibrate(a.options, device->get(),
                                    [](const std::string& line) { std::fprintf(stderr, "  %s\n", line.c_str()); });
  if (!profile.ok()) return Fail(profile.status());
  if (!WriteTextFile(a.out, traces::WriteProfile(profile.value()))) return 2;
  std::fprintf(stderr, "profile written to %s (use it with replay --profile %s)\n", a.out.c_str(), a.out.c_str());
  return 0;
}

}  // namespace

Subcommand AddCalibrate(CLI::App& app) {
  auto a = std::make_shared<CalibrateArgs>();
  CLI::App* c = app.add_subcommand("calibrate", "Measure this machine and write a profile");
  c->add_option("--out", a->out, "Profile JSON to write")->required();
  c->add_option("--dir", a->options.dir, "Directory on the disk to measure")->capture_default_str()->check(CLI::ExistingDirectory);
  c->add_option("--file-size", a->options.file_bytes, "Scratch file size")->transform(ByteSize())->capture_default_str();
  c->add_option("--memory-size", a->options.memory_bytes, "Buffer size for memory figures")->transform(ByteSize())->capture_default_str();
  c->add_option("--threads", a->options.thread_counts, "Reader thread counts to measure")->capture_default_str();
  c->add_option("--chunk", a->options.read_chunk_bytes, "Bytes per read request (the policies' default chunk)")->transform(ByteSize())->capture_default_str();
  OldSpelling(c, "--read-chunk", "--chunk", a->options.read_chunk_bytes)->transform(ByteSize());
  c->add_option("--prefault-memory", a->prefault_memory,
                "Memory the prefault figure is measured on: recycled (freed just before) or fresh")
      ->check(CLI::IsMember({"recycled", "fresh"}))->capture_default_str();
  c->add_option("--repeat", a->options.repeats, "Reads per disk figure (the median is kept)")->check(CLI::Range(1, 99))->capture_default_str();
  OldSpelling(c, "--repeats", "--repeat", a->options.repeats)->check(CLI::Range(1, 99));
  c->add_option("--name", a->options.name, "Profile name")->capture_default_str();
  c->add_option("--device", a->device, "none, host (emulated) or cuda")->check(CLI::IsMember({"none", "host", "cuda"}))->capture_default_str();
  c->add_option("--device-capacity", a->device_capacity, "Emulated device size (--device host)")->transform(ByteSize())->capture_default_str();
  return {c, [a] { return RunCalibrate(*a); }};
}

}  // namespace residency::cli
