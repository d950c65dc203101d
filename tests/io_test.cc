// Host buffers, files, the threaded reader, the device backends and the
// loader: byte-exact results across thread counts, chunk sizes and modes.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <vector>

#include "runtime/device/device_backend.h"
#include "runtime/io/host_buffer.h"
#include "runtime/io/input_file.h"
#include "runtime/io/threaded_reader.h"
#include "runtime/loader/file_loader.h"
#include "runtime/safetensors/writer.h"
#include "tests/runtime_fixture.h"

namespace residency {
namespace testing {

bool DirectIoWorks(const std::string& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_DIRECT);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

}  // namespace testing

namespace {

using testing::ScratchDir;

std::vector<char> Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

// A file whose tensor sizes are deliberately awkward: tiny ones, odd ones,
// one larger than several chunks.
std::string AwkwardFile(const ScratchDir& dir) {
  const std::string path = dir.File("awkward.safetensors");
  std::vector<safetensors::TensorSpec> t = {
      safetensors::TensorOfBytes("tiny", 1), safetensors::TensorOfBytes("odd", 4097),
      safetensors::TensorOfBytes("big", (3 << 20) + 123), safetensors::TensorOfBytes("two", 2),
      safetensors::TensorOfBytes("mid", 65537)};
  EXPECT_TRUE(safetensors::WriteFile(path, t, 42).ok());
  return path;
}

TEST(HostBuffer, ReserveGrowPrefaultDecommit) {
  auto b = io::HostBuffer::Reserve(8 << 20, 1 << 20);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->size(), 1u << 20);
  EXPECT_TRUE(b->Grow(4 << 20).ok());
  EXPECT_FALSE(b->Grow(64 << 20).ok());
  io::PrefaultMethod method{};
  ASSERT_TRUE(b->Prefault(0, 4 << 20, &method).ok());
  std::memset(b->data(), 7, 4 << 20);
  EXPECT_EQ(b->data()[(4 << 20) - 1], 7);
  EXPECT_FALSE(b->Prefault(3 << 20, 2 << 20).ok()) << "prefault past size must fail";
  io::ThreadPool pool(2);
  ASSERT_TRUE(b->PrefaultParallel(0, 4 << 20, pool).ok());
  ASSERT_TRUE(b->Decommit().ok());
  EXPECT_EQ(b->size(), 0u);
  ASSERT_TRUE(b->Grow(1 << 20).ok());
  EXPECT_EQ(b->data()[0], 0) << "decommitted memory comes back zeroed";
}

TEST(HostBuffer, PinReportsHowItLocked) {
  auto b = io::HostBuffer::Reserve(1 << 20, 1 << 20);
  ASSERT_TRUE(b.ok());
  std::string why;
  const io::PinKind kind = io::LockWithMlock(b->data(), 1 << 20, &why);
  EXPECT_TRUE(kind == io::PinKind::kMlock || (kind == io::PinKind::kPlain && !why.empty()));
  if (kind == io::PinKind::kMlock) io::UnlockMlock(b->data(), 1 << 20);
}

TEST(ThreadedReader, ByteExactAcrossThreadsChunksAndOffsets) {
  ScratchDir dir("reader");
  const std::string path = AwkwardFile(dir);
  const std::vector<char> want = Slurp(path);
  const bool direct_ok = testing::DirectIoWorks(path);
  for (bool direct : {false, true}) {
    if (direct && !direct_ok) {
      std::cout << "[  SKIPPED ] O_DIRECT part: the scratch filesystem refuses O_DIRECT\n";
      continue;
    }
    auto file = io::InputFile::Open(path, direct);
    ASSERT_TRUE(file.ok()) << file.status().message();
    for (int threads : {1, 2, 3, 8}) {
      for (std::size_t chunk : {std::size_t{4096}, std::size_t{12288}, std::size_t{1} << 20, std::size_t{8} << 20}) {
        io::ThreadedReader reader({threads, chunk, false});
        for (std::uint64_t offset : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{4095}, std::uint64_t{8193}}) {
          const std::size_t n = want.size() - offset;
          std::vector<char> got(n + 1, '\x5a');
          ASSERT_TRUE(reader.Read(file.value(), offset, n, got.data()).ok());
          ASSERT_EQ(std::memcmp(got.data(), want.data() + offset, n), 0)
              << "threads " << threads << " chunk " << chunk << " offset " << offset << " direct " << direct;
          ASSERT_EQ(got[n], '\x5a') << "wrote past the end";
        }
      }
    }
  }
}

TEST(InputFile, ReadPastTheEndIsDataLossNamingTheFile) {
  ScratchDir dir("trunc");
  const std::string path = AwkwardFile(dir);
  auto file = io::InputFile::Open(path, false);
  ASSERT_TRUE(file.ok());
  std::vector<char> buf(16);
  Status s = file->ReadExact(file->size() - 4, 8, buf.data(), nullptr);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find(path), std::string::npos);
  EXPECT_FALSE(io::InputFile::Open(dir.File("missing"), false).ok());
}

TEST(HostDevice, CapacityAndBoundsAreEnforced) {
  auto dev = device::MakeHostDevice(4 << 20);
  auto a = dev->Alloc(3 << 20);
  ASSERT_TRUE(a.ok());
  auto b = dev->Alloc(2 << 20);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kResourceExhausted);
  std::vector<char> src(1 << 20, 3), dst(1 << 20, 0);
  ASSERT_TRUE(dev->CopyToDevice(a.value(), 2 << 20, src.data(), src.size()).ok());
  EXPECT_FALSE(dev->CopyToDevice(a.value(), (2 << 20) + 1, src.data(), src.size()).ok());
  ASSERT_TRUE(dev->CopyToHost(dst.data(), a.value(), 2 << 20, dst.size()).ok());
  EXPECT_EQ(src, dst);
  EXPECT_EQ(dev->used_bytes(), 3u << 20);
  dev->Free(a.value());
  EXPECT_EQ(dev->used_bytes(), 0u);
  EXPECT_TRUE(dev->Alloc(4 << 20).ok());
}

TEST(Loader, EveryPathLoadsByteExactAndVerifies) {
  ScratchDir dir("loader");
  const std::string a = AwkwardFile(dir);
  const std::string b = dir.File("b.safetensors");
  ASSERT_TRUE(safetensors::WriteFile(b, {safetensors::TensorOfBytes("w", 5 << 20)}, 3).ok());
  auto dev = device::MakeHostDevice(64 << 20);
  const bool direct_ok = testing::DirectIoWorks(a);
  for (loader::Method method : {loader::Method::kThreaded, loader::Method::kMmapCopy}) {
    for (device::DeviceBackend* target : {static_cast<device::DeviceBackend*>(nullptr), dev.get()}) {
      for (bool direct : {false, true}) {
        if (direct && (!direct_ok || method == loader::Method::kMmapCopy)) continue;
        loader::LoadOptions o;
        o.reader = {2, 1 << 20, false};
        o.method = method;
        o.direct = direct;
        o.verify = true;
        auto r = loader::LoadFiles({a, b}, o, target);
        ASSERT_TRUE(r.ok()) << r.status().message();
        EXPECT_TRUE(r->verified);
        EXPECT_EQ(r->files, 2u);
        EXPECT_EQ(r->tensors, 6u);
        EXPECT_EQ(r->bytes, std::filesystem::file_size(a) + std::filesystem::file_size(b));
        EXPECT_GT(r->peak_rss_bytes, 0u);
      }
    }
  }
  EXPECT_EQ(dev->used_bytes(), 0u) << "the loader frees what it allocated";
}

// Flips one byte of every copy to the device: --verify must notice.
class CorruptingDevice final : public device::DeviceBackend {
 public:
  explicit CorruptingDevice(std::unique_ptr<device::DeviceBackend> inner) : inner_(std::move(inner)) {}
  std::string name() const override { return "corrupting"; }
  std::uint64_t capacity_bytes() const override { return inner_->capacity_bytes(); }
  std::uint64_t used_bytes() const override { return inner_->used_bytes(); }
  Result<device::DevicePtr> Alloc(std::size_t n) override { return inner_->Alloc(n); }
  void Free(device::DevicePtr p) override { inner_->Free(p); }
  Status CopyToDevice(device::DevicePtr d, std::size_t off, const void* src, std::size_t n) override {
    RESIDENCY_RETURN_IF_ERROR(inner_->CopyToDevice(d, off, src, n));
    const char flipped = static_cast<char>(~static_cast<const char*>(src)[n - 1]);
    return inner_->CopyToDevice(d, off + n - 1, &flipped, 1);
  }
  Status CopyToHost(void* dst, device::DevicePtr s, std::size_t off, std::size_t n) override {
    return inner_->CopyToHost(dst, s, off, n);
  }
  io::PinKind RegisterHost(void* p, std::size_t n, std::string* why) override { return inner_->RegisterHost(p, n, why); }
  void UnregisterHost(void* p, std::size_t n, io::PinKind k) override { inner_->UnregisterHost(p, n, k); }
  Status Compute(engine::Nanos ns) override { return inner_->Compute(ns); }

 private:
  std::unique_ptr<device::DeviceBackend> inner_;
};

TEST(Loader, VerifyCatchesCorruptedBytes) {
  ScratchDir dir("corrupt");
  const std::string a = AwkwardFile(dir);
  CorruptingDevice dev(device::MakeHostDevice(64 << 20));
  loader::LoadOptions o;
  o.verify = true;
  auto r = loader::LoadFiles({a}, o, &dev);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("differs from the file"), std::string::npos) << r.status().message();
  EXPECT_EQ(dev.used_bytes(), 0u) << "a failed verify leaks the device allocation";
}

// Pretends every registration is cudaHostRegister's (whatever mlock allows
// here) and keeps the ranges registered now, to catch one left behind.
class RegistrationTrackingDevice final : public device::DeviceBackend {
 public:
  explicit RegistrationTrackingDevice(std::uint64_t capacity) : inner_(device::MakeHostDevice(capacity)) {}
  std::string name() const override { return "tracking"; }
  std::uint64_t capacity_bytes() const override { return inner_->capacity_bytes(); }
  std::uint64_t used_bytes() const override { return inner_->used_bytes(); }
  Result<device::DevicePtr> Alloc(std::size_t n) override { return inner_->Alloc(n); }
  void Free(device::DevicePtr p) override { inner_->Free(p); }
  Status CopyToDevice(device::DevicePtr d, std::size_t off, const void* src, std::size_t n) override {
    return inner_->CopyToDevice(d, off, src, n);
  }
  Status CopyToHost(void* dst, device::DevicePtr s, std::size_t off, std::size_t n) override {
    return inner_->CopyToHost(dst, s, off, n);
  }
  io::PinKind RegisterHost(void* p, std::size_t n, std::string*) override {
    std::lock_guard<std::mutex> lock(mu_);
    registered_[p] = n;
    return io::PinKind::kCuda;
  }
  void UnregisterHost(void* p, std::size_t n, io::PinKind k) override {
    std::lock_guard<std::mutex> lock(mu_);
    EXPECT_EQ(k, io::PinKind::kCuda);
    auto it = registered_.find(p);
    ASSERT_NE(it, registered_.end()) << "unregistered a range never registered";
    EXPECT_EQ(it->second, n) << "unregistered with another size";
    registered_.erase(it);
  }
  Status Compute(engine::Nanos ns) override { return inner_->Compute(ns); }
  std::size_t registered() const {
    std::lock_guard<std::mutex> lock(mu_);
    return registered_.size();
  }

 private:
  std::unique_ptr<device::DeviceBackend> inner_;
  mutable std::mutex mu_;
  std::map<void*, std::size_t> registered_;
};

// A load that fails after the first file is on the device: the device block
// is freed and the staging windows unregistered before they are unmapped.
TEST(Loader, AFailedLoadFreesTheDeviceAndUnregistersStaging) {
  ScratchDir dir("failed");
  const std::string a = AwkwardFile(dir);  // about 3.2 MB
  const std::string bad = dir.File("bad.safetensors");
  std::ofstream(bad) << "not a safetensors file at all";
  const std::string big = dir.File("big.safetensors");
  ASSERT_TRUE(safetensors::WriteFile(big, {safetensors::TensorOfBytes("w", 5 << 20)}, 3).ok());
  for (loader::Method method : {loader::Method::kThreaded, loader::Method::kMmapCopy}) {
    for (const std::string& second : {bad, big}) {  // malformed; too big for what is left
      RegistrationTrackingDevice dev(6 << 20);
      loader::LoadOptions o;
      o.reader = {2, 1 << 20, false};
      o.method = method;
      auto r = loader::LoadFiles({a, second}, o, &dev);
      ASSERT_FALSE(r.ok()) << second;
      if (second == big) {
        EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().message();
      }
      EXPECT_EQ(dev.used_bytes(), 0u) << second << ": the first file's device block leaked";
      EXPECT_EQ(dev.registered(), 0u) << second << ": staging left registered";
    }
  }
  // And a load that succeeds leaves nothing registered either, over passes.
  RegistrationTrackingDevice dev(16 << 20);
  loader::LoadOptions o;
  o.reader = {2, 1 << 20, false};
  o.passes = 2;
  auto r = loader::LoadFiles({a, big}, o, &dev);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->pin_kind, io::PinKind::kCuda);
  EXPECT_EQ(dev.used_bytes(), 0u);
  EXPECT_EQ(dev.registered(), 0u);
}

TEST(Loader, MalformedFileFailsNamingIt) {
  ScratchDir dir("bad");
  const std::string bad = dir.File("bad.safetensors");
  std::ofstream(bad) << "not a safetensors file at all";
  auto r = loader::LoadFiles({bad}, {}, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(bad), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace residency
