#include "runtime/loader/file_loader.h"

#include "runtime/base/input_text.h"
#include "runtime/io/mapped_copy.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>

#include "runtime/io/input_file.h"
#include "runtime/io/thread_pool.h"
#include "runtime/safetensors/header.h"

namespace residency::loader {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void AddStage(LoadReport& r, const std::string& name, std::uint64_t bytes, double seconds) {
  for (Stage& s : r.stages)
    if (s.name == name) {
      s.bytes += bytes;
      s.seconds += seconds;
      return;
    }
  r.stages.push_back({name, bytes, seconds});
}

// Where one loaded file's bytes ended up: a host buffer or a device allocation.
struct Loaded {
  std::string path;
  safetensors::Header header;
  std::uint64_t file_bytes = 0;
  io::HostBuffer host;          // device none / mmap-copy
  io::PinKind pin = io::PinKind::kNone;  // how `host` is locked
  std::unique_ptr<char[]> plain;  // mmap-copy destination
  device::DevicePtr dev = 0;
};

io::PinKind Lock(device::DeviceBackend* device, void* p, std::size_t n, std::string* why) {
  return device ? device->RegisterHost(p, n, why) : io::LockWithMlock(p, n, why);
}

void Unlock(device::DeviceBackend* device, void* p, std::size_t n, io::PinKind kind) {
  if (kind == io::PinKind::kNone || kind == io::PinKind::kPlain) return;
  if (device) device->UnregisterHost(p, n, kind);
  else io::UnlockMlock(p, n);
}

// Reads `n` bytes at `offset` of the loaded image back (from host or device).
Status ReadBack(device::DeviceBackend* device, const Loaded& l, std::uint64_t offset,
                std::size_t n, char* out) {
  if (l.dev != 0) return device->CopyToHost(out, l.dev, offset, n);
  const char* base = l.plain ? l.plain.get() : l.host.data();
  std::memcpy(out, base + offset, n);
  return Status::Ok();
}

Status Verify(device::DeviceBackend* device, const Loaded& l) {
  RESIDENCY_ASSIGN_OR_RETURN(io::InputFile file, io::InputFile::Open(l.path, false));
  constexpr std::size_t kPiece = 16u << 20;
  std::vector<char> want(kPiece), got(kPiece);
  for (const safetensors::TensorInfo& t : l.header.tensors) {
    for (std::uint64_t done = 0; done < t.bytes();) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kPiece, t.bytes() - done));
      const std::uint64_t at = l.header.data_offset + t.begin + done;
      RESIDENCY_RETURN_IF_ERROR(file.ReadExact(at, n, want.data(), nullptr));
      RESIDENCY_RETURN_IF_ERROR(ReadBack(device, l, at, n, got.data()));
      if (std::memcmp(want.data(), got.data(), n) != 0)
        return DataLoss(l.path + ": verify: tensor '" + t.name + "' differs from the file in bytes [" +
                        std::to_string(done) + "," + std::to_string(done + n) + ")");
      done += n;
    }
  }
  return Status::Ok();
}

class Loader {
 public:
  Loader(const LoadOptions& options, device::DeviceBackend* device)
      : options_(options), device_(device), reader_(options.reader) {}
  // On every path, errors included: device blocks freed and host memory
  // unregistered before it is unmapped (a registered range that is unmapped
  // stays pinned in the driver's tables).
  ~Loader() { Release(); }
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  Result<LoadReport> Run(const std::vector<std::string>& paths);

 private:
  void Release();
  void DropBuffers(Loaded& l);  // frees one file's device block and host copy
  Status LoadToHost(Loaded& l, const io::InputFile& file);
  Status LoadToDevice(Loaded& l, const io::InputFile& file);
  Status LoadMmapCopy(Loaded& l);
  Status EnsureStaging();
  void NotePinned(std::uint64_t delta) {
    pinned_ += delta;
    report_.peak_pinned_bytes = std::max(report_.peak_pinned_bytes, pinned_);
  }

  const LoadOptions& options_;
  device::DeviceBackend* device_;
  io::ThreadedReader reader_;
  LoadReport report_;
  std::uint64_t pinned_ = 0;
  std::vector<Loaded> loaded_;
  io::HostBuffer staging_[2];
  io::PinKind staging_pin_[2] = {io::PinKind::kNone, io::PinKind::kNone};
  std::size_t window_ = 0;  // set once both staging slots are ready
};

// The file must still be the one its header described: a file replaced,
// grown or truncated between the header and the data is refused by name.
Status SameAsItsHeader(const Loaded& l, std::uint64_t file_bytes) {
  const std::uint64_t described = l.header.data_offset + l.header.data_bytes;
  if (file_bytes != described)
    return DataLoss(Printable(l.path) + ": changed while being loaded: its header describes " +
                    std::to_string(described) + " bytes, the file now has " + std::to_string(file_bytes));
  return Status::Ok();
}

void Loader::DropBuffers(Loaded& l) {
  if (l.dev != 0) device_->Free(l.dev);
  l.dev = 0;
  if (l.host.data()) Unlock(device_, l.host.data(), l.host.size(), l.pin);
  l.pin = io::PinKind::kNone;
  l.host = io::HostBuffer();
}

void Loader::Release() {
  for (Loaded& l : loaded_) DropBuffers(l);
  for (int i = 0; i < 2; ++i) {
    if (staging_[i].data()) Unlock(device_, staging_[i].data(), staging_[i].size(), staging_pin_[i]);
    staging_pin_[i] = io::PinKind::kNone;
  }
}

Status Loader::EnsureStaging() {
  if (window_ != 0) return Status::Ok();
  const std::size_t window =
      options_.reader.chunk_bytes * static_cast<std::size_t>(std::max(1, options_.reader.threads));
  for (int i = 0; i < 2; ++i) {
    if (staging_[i].data()) continue;  // ready from an attempt that failed on the other slot
    RESIDENCY_ASSIGN_OR_RETURN(io::HostBuffer slot, io::HostBuffer::Reserve(window, window));
    RESIDENCY_RETURN_IF_ERROR(slot.Prefault(0, window));
    staging_[i] = std::move(slot);
    std::string why;
    staging_pin_[i] = report_.pin_kind = Lock(device_, staging_[i].data(), window, &why);
    if (!why.empty()) report_.pin_note = why;
    if (report_.pin_kind != io::PinKind::kPlain) NotePinned(window);
  }
  window_ = window;
  report_.staging_bytes = window_;
  return Status::Ok();
}

Status Loader::LoadToHost(Loaded& l, const io::InputFile& file) {
  const bool fresh = l.host.data() == nullptr;
  auto t0 = Clock::now();
  if (fresh) {
    // Fresh memory: fault it in on every thread first; pread into faulted
    // pages is a plain copy (docs/BENCHMARKS.md, "loader").
    RESIDENCY_ASSIGN_OR_RETURN(l.host, io::HostBuffer::Reserve(file.size(), file.size()));
    RESIDENCY_RETURN_IF_ERROR(l.host.PrefaultParallel(0, file.size(), reader_.pool()));
    AddStage(report_, "prefault", file.size(), Since(t0));
  }
  t0 = Clock::now();
  RESIDENCY_RETURN_IF_ERROR(reader_.Read(file, 0, file.size(), l.host.data()));
  AddStage(report_, "read", file.size(), Since(t0));
  if (!options_.pin || !fresh) return Status::Ok();  // pinned in the first pass
  t0 = Clock::now();
  std::string why;
  l.pin = report_.pin_kind = Lock(device_, l.host.data(), l.host.size(), &why);
  if (!why.empty()) report_.pin_note = why;
  if (report_.pin_kind != io::PinKind::kPlain) NotePinned(file.size());
  AddStage(report_, "pin", file.size(), Since(t0));
  return Status::Ok();
}

Status Loader::LoadToDevice(Loaded& l, const io::InputFile& file) {
  RESIDENCY_RETURN_IF_ERROR(EnsureStaging());
  if (l.dev == 0) {
    const auto t0 = Clock::now();
    RESIDENCY_ASSIGN_OR_RETURN(l.dev, device_->Alloc(file.size()));
    AddStage(report_, "device alloc", file.size(), Since(t0));
  }

  io::ThreadPool copier(1);
  io::TaskGroup slot_busy[2];
  Status copy_status[2];
  double copy_seconds[2] = {0, 0};
  Status status;
  std::size_t k = 0;
  double read_seconds = 0;
  const auto pipeline0 = Clock::now();
  for (std::uint64_t off = 0; off < file.size(); off += window_, ++k) {
    const std::size_t slot = k % 2;
    if (!slot_busy[slot].Wait().empty() || !copy_status[slot].ok()) break;
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(window_, file.size() - off));
    const auto r0 = Clock::now();
    status = reader_.Read(file, off, n, staging_[slot].data());
    read_seconds += Since(r0);
    if (!status.ok()) break;
    slot_busy[slot].Add();
    copier.Post([&, slot, off, n] {
      const auto c0 = Clock::now();
      copy_status[slot] = device_->CopyToDevice(l.dev, off, staging_[slot].data(), n);
      copy_seconds[slot] += Since(c0);
      slot_busy[slot].Done(true);
    });
  }
  for (io::TaskGroup& g : slot_busy) g.Wait();
  RESIDENCY_RETURN_IF_ERROR(status);
  for (Status& s : copy_status) RESIDENCY_RETURN_IF_ERROR(s);
  AddStage(report_, "read", file.size(), read_seconds);
  AddStage(report_, "copy to device", file.size(), copy_seconds[0] + copy_seconds[1]);
  AddStage(report_, "read+copy wall", file.size(), Since(pipeline0));
  return Status::Ok();
}

Status Loader::LoadMmapCopy(Loaded& l) {
  RESIDENCY_ASSIGN_OR_RETURN(io::InputFile file, io::InputFile::Open(l.path, false));
  const std::size_t n = file.size();
  const auto t0 = Clock::now();
  void* map = nullptr;
  if (n > 0) {
    const int fd = ::open(l.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NotFound(l.path + ": cannot open: " + std::strerror(errno));
    map = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (map == MAP_FAILED) return Internal(l.path + ": mmap failed: " + std::strerror(errno));
  }
  l.plain.reset(new char[n == 0 ? 1 : n]);  // fresh, unfaulted, like torch.empty
  const Status copied = io::CopyFromMapping(l.plain.get(), map, n, l.path);
  if (n) ::munmap(map, n);
  RESIDENCY_RETURN_IF_ERROR(copied);
  RESIDENCY_RETURN_IF_ERROR(SameAsItsHeader(l, n));
  AddStage(report_, "mmap + copy", n, Since(t0));
  if (device_ == nullptr) return Status::Ok();
  auto t1 = Clock::now();
  if (l.dev == 0) {
    RESIDENCY_ASSIGN_OR_RETURN(l.dev, device_->Alloc(n));
    AddStage(report_, "device alloc", n, Since(t1));
  }
  t1 = Clock::now();
  RESIDENCY_RETURN_IF_ERROR(device_->CopyToDevice(l.dev, 0, l.plain.get(), n));
  AddStage(report_, "copy to device", n, Since(t1));
  l.plain.reset();
  return Status::Ok();
}

Result<LoadReport> Loader::Run(const std::vector<std::string>& paths) {
  report_.device = device_ ? device_->name() : "none";
  loaded_.resize(paths.size());
  for (int pass = 0; pass < std::max(1, options_.passes); ++pass) {
    report_.stages.clear();
    report_.files = report_.tensors = report_.bytes = 0;
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < paths.size(); ++i) {
      Loaded& l = loaded_[i];
      l.path = paths[i];
      RESIDENCY_ASSIGN_OR_RETURN(l.header, safetensors::ReadHeader(l.path));
      report_.tensors += l.header.tensors.size();
      if (options_.method == Method::kMmapCopy) {
        RESIDENCY_RETURN_IF_ERROR(LoadMmapCopy(l));
      } else {
        RESIDENCY_ASSIGN_OR_RETURN(io::InputFile file, io::InputFile::Open(l.path, options_.direct));
        RESIDENCY_RETURN_IF_ERROR(SameAsItsHeader(l, file.size()));
        // A file that changed size since the last pass gets new buffers:
        // reusing the old ones would read past their end.
        if (l.file_bytes != file.size()) DropBuffers(l);
        l.file_bytes = file.size();
        RESIDENCY_RETURN_IF_ERROR(device_ ? LoadToDevice(l, file) : LoadToHost(l, file));
      }
      report_.bytes += l.header.data_offset + l.header.data_bytes;
      ++report_.files;
    }
    report_.seconds = Since(t0);
    report_.pass_seconds.push_back(report_.seconds);
  }
  report_.peak_rss_bytes = PeakRssBytes();
  if (options_.verify) {
    const auto v0 = Clock::now();
    for (const Loaded& l : loaded_) RESIDENCY_RETURN_IF_ERROR(Verify(device_, l));
    AddStage(report_, "verify", report_.bytes, Since(v0));
    report_.verified = true;
  }
  Release();
  return std::move(report_);
}

}  // namespace

std::uint64_t PeakRssBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

Result<LoadReport> LoadFiles(const std::vector<std::string>& paths, const LoadOptions& options,
                             device::DeviceBackend* device) {
  Loader loader(options, device);
  return loader.Run(paths);
}

}  // namespace residency::loader
