// The CUDA device backend on a real GPU: round trip, offsets, two threads at
// once, out of memory, reuse after free, bounds. Without a GPU each test is a
// visible SKIP that says why; with RESIDENCY_REQUIRE_CUDA=1 (the GPU
// machine's run, scripts/gpu-check.sh) it is a FAILURE. The bounds checks
// also run against the host backend, whose behaviour the CUDA one matches.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <iterator>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "runtime/device/device_backend.h"
#include "runtime/io/host_buffer.h"

namespace residency {
namespace {

bool CudaRequired() {
  const char* v = std::getenv("RESIDENCY_REQUIRE_CUDA");
  return v != nullptr && std::string(v) == "1";
}

// Page-aligned, faulted-in host memory (as the loader's staging windows),
// filled with a pattern that differs by `seed`.
io::HostBuffer Pattern(std::size_t n, unsigned seed) {
  auto b = io::HostBuffer::Reserve(n, n);
  EXPECT_TRUE(b.ok()) << b.status().message();
  if (!b.ok()) return {};
  EXPECT_TRUE(b->Prefault(0, n).ok());
  for (std::size_t i = 0; i < n; ++i) b->data()[i] = static_cast<char>(i * 31 + seed * 7 + (i >> 12));
  return std::move(b).value();
}

// What both backends must refuse, with the same code: copies that leave one
// live allocation, including ones whose offset + n would overflow.
void ExpectCopiesStayInBounds(device::DeviceBackend& dev) {
  constexpr std::size_t kSize = 1 << 20;
  auto p = dev.Alloc(kSize);
  ASSERT_TRUE(p.ok()) << p.status().message();
  std::vector<char> buf(64, 1);
  EXPECT_TRUE(dev.CopyToDevice(*p, kSize - 64, buf.data(), 64).ok()) << "the last 64 bytes are in bounds";
  EXPECT_TRUE(dev.CopyToDevice(*p, kSize, buf.data(), 0).ok()) << "an empty copy at the end is in bounds";
  Status s = dev.CopyToDevice(*p, kSize - 63, buf.data(), 64);
  EXPECT_EQ(s.code(), StatusCode::kInternal) << s.message();
  EXPECT_NE(s.message().find("overruns a 1048576-byte allocation"), std::string::npos) << s.message();
  s = dev.CopyToHost(buf.data(), *p, kSize + 1, 0);
  EXPECT_EQ(s.code(), StatusCode::kInternal) << "an offset past the end: " << s.message();
  s = dev.CopyToHost(buf.data(), *p, 1, std::numeric_limits<std::size_t>::max());
  EXPECT_EQ(s.code(), StatusCode::kInternal) << "offset + n overflows: " << s.message();
  s = dev.CopyToDevice(*p + 4096, 0, buf.data(), 64);
  EXPECT_EQ(s.code(), StatusCode::kInternal) << "not the start of an allocation: " << s.message();
  EXPECT_NE(s.message().find("unknown allocation"), std::string::npos) << s.message();
  dev.Free(*p);
  s = dev.CopyToDevice(*p, 0, buf.data(), 64);
  EXPECT_EQ(s.code(), StatusCode::kInternal) << "a freed block: " << s.message();
  EXPECT_EQ(dev.used_bytes(), 0u);
}

TEST(HostDevice, CopiesStayInBounds) {
  auto dev = device::MakeHostDevice(8 << 20);
  ExpectCopiesStayInBounds(*dev);
}

TEST(HostDevice, CopiesStayInBoundsInTheResidentArena) {
  auto dev = device::MakeResidentHostDevice(8 << 20);
  ASSERT_TRUE(dev.ok()) << dev.status().message();
  ExpectCopiesStayInBounds(**dev);
}

// Runs where there is no GPU too: the error says what is wrong.
TEST(CudaSetup, NoGpuErrorSaysWhy) {
  if (!device::CudaCompiledIn()) GTEST_SKIP() << "this build has no CUDA backend";
  auto dev = device::MakeCudaDevice(0);
  if (dev.ok()) GTEST_SKIP() << "a GPU is here: " << (*dev)->name();
  const std::string& m = dev.status().message();
  EXPECT_EQ(dev.status().code(), StatusCode::kNotFound) << m;
  EXPECT_TRUE(m.rfind("no usable CUDA GPU: ", 0) == 0 || m.rfind("CUDA device 0 does not exist", 0) == 0) << m;
  if (m.find("(35)") != std::string::npos) {
    EXPECT_NE(m.find("error 35 means either no NVIDIA driver"), std::string::npos) << m;
    EXPECT_TRUE(m.find("no driver is loaded") != std::string::npos ||
                m.find("older than this build's runtime") != std::string::npos)
        << m;
  }
  EXPECT_FALSE(device::MakeCudaDevice(-1).ok());
}

class CudaDevice : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = "this build has no CUDA backend";
    if (device::CudaCompiledIn()) {
      auto d = device::MakeCudaDevice(0);
      if (d.ok()) dev_ = std::move(d).value();
      else why = d.status().message();
    }
    if (dev_) {
      ASSERT_EQ(dev_->name().rfind("cuda:", 0), 0u) << "not the CUDA backend: " << dev_->name();
      ASSERT_FALSE(dev_->copies_on_cpu());
      ASSERT_GT(dev_->capacity_bytes(), 256u << 20) << dev_->name();
      return;
    }
    if (CudaRequired()) FAIL() << "RESIDENCY_REQUIRE_CUDA=1 and no usable GPU: " << why;
    GTEST_SKIP() << "no GPU here, CUDA path not exercised (RESIDENCY_REQUIRE_CUDA=1 makes this a failure): " << why;
  }

  std::unique_ptr<device::DeviceBackend> dev_;
};

TEST_F(CudaDevice, RoundTrip) {
  constexpr std::size_t kSize = 8 << 20;
  auto p = dev_->Alloc(kSize);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(dev_->used_bytes(), kSize);
  io::HostBuffer src = Pattern(kSize, 1), dst = Pattern(kSize, 2);
  std::string why;
  const io::PinKind kind = dev_->RegisterHost(src.data(), kSize, &why);
  EXPECT_TRUE(kind == io::PinKind::kCuda || !why.empty()) << "a fallback must say why";
  EXPECT_EQ(kind, io::PinKind::kCuda) << "cudaHostRegister failed: " << why;
  ASSERT_TRUE(dev_->CopyToDevice(*p, 0, src.data(), kSize).ok());
  ASSERT_TRUE(dev_->CopyToHost(dst.data(), *p, 0, kSize).ok());
  dev_->UnregisterHost(src.data(), kSize, kind);
  EXPECT_EQ(std::memcmp(src.data(), dst.data(), kSize), 0);
  // From pageable memory too (staged by the driver): the same bytes.
  io::HostBuffer pageable = Pattern(kSize, 3);
  ASSERT_TRUE(dev_->CopyToDevice(*p, 0, pageable.data(), kSize).ok());
  ASSERT_TRUE(dev_->CopyToHost(dst.data(), *p, 0, kSize).ok());
  EXPECT_EQ(std::memcmp(pageable.data(), dst.data(), kSize), 0);
  dev_->Free(*p);
  EXPECT_EQ(dev_->used_bytes(), 0u);
}

TEST_F(CudaDevice, CopiesAtOffsets) {
  constexpr std::size_t kSize = (3 << 20) + 123;
  auto p = dev_->Alloc(kSize);
  ASSERT_TRUE(p.ok()) << p.status().message();
  io::HostBuffer src = Pattern(kSize, 4);
  // Awkward pieces: one byte, a page less one, unaligned starts, the tail.
  const std::size_t cuts[] = {0, 1, 4096, 4097, (1 << 20) + 7, (2 << 20) + 4095, kSize};
  for (std::size_t i = 0; i + 1 < std::size(cuts); ++i)
    ASSERT_TRUE(dev_->CopyToDevice(*p, cuts[i], src.data() + cuts[i], cuts[i + 1] - cuts[i]).ok()) << cuts[i];
  std::vector<char> whole(kSize);
  ASSERT_TRUE(dev_->CopyToHost(whole.data(), *p, 0, kSize).ok());
  EXPECT_EQ(std::memcmp(whole.data(), src.data(), kSize), 0);
  // Reading back at an offset writes exactly n bytes.
  std::vector<char> part(4096 + 1, '\x5a');
  ASSERT_TRUE(dev_->CopyToHost(part.data(), *p, (1 << 20) + 3, 4096).ok());
  EXPECT_EQ(std::memcmp(part.data(), src.data() + (1 << 20) + 3, 4096), 0);
  EXPECT_EQ(part[4096], '\x5a') << "wrote past the end";
  dev_->Free(*p);
}

// As the executor's copier threads: each its own stream, at the same time.
TEST_F(CudaDevice, TwoThreadsCopyAtOnceIntoDistinctAllocations) {
  constexpr std::size_t kSize = 64 << 20, kPiece = 1 << 20;
  auto a = dev_->Alloc(kSize), b = dev_->Alloc(kSize);
  ASSERT_TRUE(a.ok() && b.ok());
  io::HostBuffer src[2] = {Pattern(kSize, 5), Pattern(kSize, 6)};
  std::string why;
  const io::PinKind kind = dev_->RegisterHost(src[0].data(), kSize, &why);  // one pinned source, one pageable
  Status status[2];
  std::vector<char> back[2] = {std::vector<char>(kSize), std::vector<char>(kSize)};
  auto copier = [&](int t, device::DevicePtr to) {
    for (int round = 0; round < 4 && status[t].ok(); ++round)
      for (std::size_t at = 0; at < kSize && status[t].ok(); at += kPiece)
        status[t] = dev_->CopyToDevice(to, at, src[t].data() + at, kPiece);
    if (status[t].ok()) status[t] = dev_->CopyToHost(back[t].data(), to, 0, kSize);
  };
  std::thread t0(copier, 0, *a), t1(copier, 1, *b);
  t0.join();
  t1.join();
  dev_->UnregisterHost(src[0].data(), kSize, kind);
  for (int t = 0; t < 2; ++t) {
    ASSERT_TRUE(status[t].ok()) << "thread " << t << ": " << status[t].message();
    EXPECT_EQ(std::memcmp(back[t].data(), src[t].data(), kSize), 0) << "thread " << t;
  }
  dev_->Free(*a);
  dev_->Free(*b);
}

TEST_F(CudaDevice, OutOfMemoryIsResourceExhaustedNotACrash) {
  const std::uint64_t cap = dev_->capacity_bytes();
  auto too_big = dev_->Alloc(cap + 1);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.status().code(), StatusCode::kResourceExhausted) << too_big.status().message();
  // Within this device's capacity, but another user holds the memory:
  // cudaMalloc itself fails, and says so.
  auto other = device::MakeCudaDevice(0);
  ASSERT_TRUE(other.ok()) << other.status().message();
  auto hog = (*other)->Alloc(cap / 4 * 3);
  ASSERT_TRUE(hog.ok()) << hog.status().message();
  auto half = dev_->Alloc(cap / 2);
  ASSERT_FALSE(half.ok());
  EXPECT_EQ(half.status().code(), StatusCode::kResourceExhausted) << half.status().message();
  EXPECT_NE(half.status().message().find("cudaMalloc"), std::string::npos) << half.status().message();
  EXPECT_EQ(dev_->used_bytes(), 0u) << "a failed allocation counts nothing";
  (*other)->Free(*hog);  // cached by `other`: still held on the device
  other.value().reset();  // now given back
  auto retry = dev_->Alloc(cap / 2);
  ASSERT_TRUE(retry.ok()) << retry.status().message();
  dev_->Free(*retry);
}

TEST_F(CudaDevice, ReuseAfterFree) {
  constexpr std::size_t kSize = 16 << 20;
  auto p = dev_->Alloc(kSize);
  ASSERT_TRUE(p.ok()) << p.status().message();
  io::HostBuffer first = Pattern(kSize, 7), second = Pattern(kSize, 8);
  ASSERT_TRUE(dev_->CopyToDevice(*p, 0, first.data(), kSize).ok());
  dev_->Free(*p);
  EXPECT_EQ(dev_->used_bytes(), 0u) << "a cached block is not in use";
  EXPECT_FALSE(dev_->CopyToDevice(*p, 0, first.data(), kSize).ok()) << "a freed block takes no copies";
  auto q = dev_->Alloc(kSize);
  ASSERT_TRUE(q.ok()) << q.status().message();
  EXPECT_EQ(*q, *p) << "a freed block of the same size is reused";
  EXPECT_EQ(dev_->used_bytes(), kSize);
  ASSERT_TRUE(dev_->CopyToDevice(*q, 0, second.data(), kSize).ok());
  std::vector<char> back(kSize);
  ASSERT_TRUE(dev_->CopyToHost(back.data(), *q, 0, kSize).ok());
  EXPECT_EQ(std::memcmp(back.data(), second.data(), kSize), 0);
  // Cached blocks give way to an allocation that would not fit beside them.
  dev_->Free(*q);
  const std::uint64_t cap = dev_->capacity_bytes();
  std::vector<device::DevicePtr> quarters;
  for (int i = 0; i < 3; ++i) {
    auto b = dev_->Alloc(cap / 4);
    ASSERT_TRUE(b.ok()) << b.status().message();
    quarters.push_back(*b);
  }
  for (device::DevicePtr b : quarters) dev_->Free(b);
  auto big = dev_->Alloc(cap / 2);
  ASSERT_TRUE(big.ok()) << "the cache did not give way: " << big.status().message();
  EXPECT_EQ(dev_->used_bytes(), cap / 2);
  dev_->Free(*big);
}

TEST_F(CudaDevice, OutOfBoundsCopiesAreRefused) { ExpectCopiesStayInBounds(*dev_); }

}  // namespace
}  // namespace residency
