// `residency load` (real files into host memory or a device, per-stage
// figures) and `residency gen-model` (safetensors files shaped like a trace's
// model, for `load`, `run` and the benchmarks).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "harness/cli/cli.h"
#include "harness/cli/device_choice.h"
#include "harness/report/report.h"
#include "harness/common/progress_line.h"
#include "runtime/loader/file_loader.h"
#include "runtime/safetensors/writer.h"
#include "traces/trace.h"

namespace residency::cli {
namespace {

struct LoadArgs {
  std::vector<std::string> files;
  int threads = std::max(2u, std::thread::hardware_concurrency());
  // The policies' default chunk, as in calibrate and run (one vocabulary).
  std::size_t chunk = static_cast<std::size_t>(engine::Policy{}.chunk_bytes);
  bool direct = false, verify = false, no_pin = false, json = false, lazy_device = false;
  std::string device = "none";
  std::string method = "threaded";
  std::size_t device_capacity = 0;
  int passes = 1;
};

double Gbps(std::uint64_t bytes, double seconds) { return seconds > 0 ? bytes / seconds / 1e9 : 0; }

int RunLoad(const LoadArgs& a) {
  loader::LoadOptions options;
  options.reader.threads = a.threads;
  options.reader.chunk_bytes = a.chunk;
  options.direct = a.direct;
  options.verify = a.verify;
  options.pin = !a.no_pin;
  options.passes = a.passes;
  options.method = a.method == "mmap-copy" ? loader::Method::kMmapCopy : loader::Method::kThreaded;
  std::uint64_t total = 0;
  for (const std::string& f : a.files) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(f, ec);
    if (!ec) total += size;
  }
  // The emulated device's memory is host memory that must be faulted in; a
  // GPU's VRAM is resident. So by default it is faulted in before the timer,
  // and the time it took is reported on its own line.
  const std::uint64_t capacity = a.device_capacity ? a.device_capacity : total + (64u << 20);
  const bool resident = a.device == "host" && !a.lazy_device;
  const auto setup0 = std::chrono::steady_clock::now();
  auto device = resident ? device::MakeResidentHostDevice(capacity) : MakeDevice(a.device, capacity);
  if (!device.ok()) return Fail(device.status());
  const double device_setup_seconds =
      resident ? std::chrono::duration<double>(std::chrono::steady_clock::now() - setup0).count() : 0;
  auto report = loader::LoadFiles(a.files, options, device->get());
  if (!report.ok()) return Fail(report.status());
  const loader::LoadReport& r = report.value();
  if (a.json) {
    nlohmann::json j = {{"files", r.files}, {"tensors", r.tensors}, {"bytes", r.bytes},
                        {"seconds", r.seconds}, {"gb_per_s", Gbps(r.bytes, r.seconds)},
                        {"peak_rss_bytes", r.peak_rss_bytes}, {"peak_pinned_bytes", r.peak_pinned_bytes},
                        {"staging_window_bytes", r.staging_bytes}, {"pin", std::string(io::ToString(r.pin_kind))},
                        {"device", r.device}, {"threads", a.threads}, {"chunk_bytes", a.chunk},
                        {"direct", a.direct}, {"method", a.method}, {"verified", r.verified},
                        {"pass_seconds", r.pass_seconds}, {"device_setup_seconds", device_setup_seconds}};
    for (const loader::Stage& s : r.stages)
      j["stages"].push_back({{"name", s.name}, {"bytes", s.bytes}, {"seconds", s.seconds},
                             {"gb_per_s", Gbps(s.bytes, s.seconds)}});
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("loaded %llu file(s), %llu tensors, %s in %.3f s = %.2f GB/s  [%s, %d threads, %s chunks%s, device %s]\n",
              static_cast<unsigned long long>(r.files), static_cast<unsigned long long>(r.tensors),
              harness::HumanBytes(static_cast<engine::Bytes>(r.bytes)).c_str(), r.seconds,
              Gbps(r.bytes, r.seconds), a.method.c_str(), a.threads,
              harness::HumanBytes(static_cast<engine::Bytes>(a.chunk)).c_str(),
              a.direct ? ", O_DIRECT" : "", r.device.c_str());
  if (device_setup_seconds > 0)
    std::printf("  device memory: %s faulted in before the load in %.3f s (resident, as VRAM is; --lazy-device "
                "faults it inside the load)\n",
                harness::HumanBytes(static_cast<engine::Bytes>(capacity)).c_str(), device_setup_seconds);
  if (r.pass_seconds.size() > 1) {
    std::printf("  passes:");
    for (double s : r.pass_seconds) std::printf(" %.3f s (%.2f GB/s)", s, Gbps(r.bytes, s));
    std::printf("; figures below are the last pass\n");
  }
  std::printf("  %-16s %12s %10s %10s\n", "stage", "bytes", "seconds", "GB/s");
  for (const loader::Stage& s : r.stages)
    std::printf("  %-16s %12s %10.3f %10.2f\n", s.name.c_str(),
                harness::HumanBytes(static_cast<engine::Bytes>(s.bytes)).c_str(), s.seconds,
                Gbps(s.bytes, s.seconds));
  std::printf("  peak RSS %s, peak pinned %s (%s)%s\n",
              harness::HumanBytes(static_cast<engine::Bytes>(r.peak_rss_bytes)).c_str(),
              harness::HumanBytes(static_cast<engine::Bytes>(r.peak_pinned_bytes)).c_str(),
              std::string(io::ToString(r.pin_kind)).c_str(),
              r.staging_bytes ? (", staging window " +
                                 harness::HumanBytes(static_cast<engine::Bytes>(r.staging_bytes)) + " x 2").c_str()
                              : "");
  if (!r.pin_note.empty()) std::printf("  pinning fell back: %s\n", r.pin_note.c_str());
  if (r.verified) std::printf("  verify: every tensor matches the file\n");
  return 0;
}

struct GenArgs {
  std::string trace, model, out;
  std::uint64_t seed = 1;
};

int RunGenModel(const GenArgs& a) {
  auto workload = traces::ReadWorkloadFile(a.trace);
  if (!workload.ok()) return Fail(workload.status());
  const engine::Op* model = nullptr;
  std::string known;
  for (const engine::Op& op : workload->ops)
    if (op.kind == engine::OpKind::kRegisterModel) {
      if (op.name == a.model) model = &op;
      known += (known.empty() ? "" : ", ") + op.name;
    }
  if (model == nullptr)
    return Fail(NotFound(a.trace + ": no model '" + a.model + "' (models: " + known + ")"));
  std::error_code ec;
  std::filesystem::create_directories(a.out, ec);
  if (ec) return Fail(Internal(a.out + ": cannot create directory: " + ec.message()));
  for (std::size_t i = 0; i < model->files.size(); ++i) {
    const engine::FileSpec& f = model->files[i];
    auto specs = safetensors::FitToFileSize(f.path, f.tensor_bytes, f.bytes);
    if (!specs.ok()) return Fail(specs.status());
    const std::string path = (std::filesystem::path(a.out) / std::filesystem::path(f.path).filename()).string();
    const auto t0 = std::chrono::steady_clock::now();
    // A bar on a terminal (a 28 GB file takes minutes); nothing in a pipe or log.
    sweep::ProgressLine bar(stderr, "writing " + std::filesystem::path(path).filename().string() + " (MiB)",
                            sweep::OffTerminal::kNothing);
    Status s = safetensors::WriteFile(path, specs.value(), a.seed * 1000003 + i,
                                      [&bar](std::uint64_t done, std::uint64_t total) {
                                        bar.Update(done >> 20, total >> 20, "");
                                      });
    bar.Finish();
    if (!s.ok()) return Fail(s);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("wrote %s: %s, %zu tensors, %.2f s\n", path.c_str(),
                harness::HumanBytes(f.bytes).c_str(), specs->size(), secs);
  }
  return 0;
}

}  // namespace

Subcommand AddLoad(CLI::App& app) {
  auto a = std::make_shared<LoadArgs>();
  CLI::App* c = app.add_subcommand("load", "Load real safetensors files and report each stage");
  c->add_option("files", a->files, "safetensors files")->required()->check(CLI::ExistingFile);
  c->add_option("--threads", a->threads, "Reader threads")->capture_default_str()->check(CLI::Range(1, 256));
  c->add_option("--chunk", a->chunk, "Bytes per read request (the policies' default chunk)")->transform(ByteSize())->capture_default_str();
  c->add_flag("--direct", a->direct, "O_DIRECT reads (bypass the page cache)");
  c->add_option("--device", a->device, "Where the weights go: none (pinned host memory), host (emulated device), cuda")
      ->check(CLI::IsMember({"none", "host", "cuda"}))->capture_default_str();
  c->add_option("--device-capacity", a->device_capacity, "Emulated device size (default: the files' size + 64 MiB)")->transform(ByteSize());
  c->add_flag("--lazy-device", a->lazy_device,
              "Emulated device: fault its memory at allocation, inside the timed load, instead of before it");
  c->add_option("--method", a->method, "threaded (this project's loader) or mmap-copy (the classic path)")
      ->check(CLI::IsMember({"threaded", "mmap-copy"}))->capture_default_str();
  c->add_flag("--no-pin", a->no_pin, "Leave the host copy pageable (device none)");
  c->add_option("--repeat", a->passes, "Load this many times, reusing buffers after the first pass (steady state)")
      ->capture_default_str()->check(CLI::Range(1, 1000));
  c->add_flag("--verify", a->verify, "Check every tensor's bytes against the file afterwards");
  c->add_flag("--json", a->json, "Print one JSON object");
  return {c, [a] { return RunLoad(*a); }};
}

Subcommand AddGenModel(CLI::App& app) {
  auto a = std::make_shared<GenArgs>();
  CLI::App* c = app.add_subcommand("gen-model", "Write safetensors files with the sizes a trace declares for a model");
  c->add_option("--trace", a->trace, "Trace file")->required();
  c->add_option("--model", a->model, "Model name in the trace")->required();
  c->add_option("--out", a->out, "Output directory")->required();
  c->add_option("--seed", a->seed, "Content seed")->capture_default_str();
  return {c, [a] { return RunGenModel(*a); }};
}

}  // namespace residency::cli
