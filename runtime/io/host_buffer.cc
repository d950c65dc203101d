#include "runtime/io/host_buffer.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>
#include <algorithm>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace residency::io {

std::string_view ToString(PinKind kind) {
  switch (kind) {
    case PinKind::kNone: return "none";
    case PinKind::kCuda: return "cudaHostRegister";
    case PinKind::kMlock: return "mlock";
    case PinKind::kPlain: return "plain (pinning not permitted)";
  }
  return "?";
}

std::string_view ToString(PrefaultMethod method) {
  return method == PrefaultMethod::kPopulateWrite ? "MADV_POPULATE_WRITE" : "page touching";
}

HostBuffer::~HostBuffer() {
  if (data_ != nullptr) ::munmap(data_, capacity_);
}

HostBuffer::HostBuffer(HostBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0)) {}

HostBuffer& HostBuffer::operator=(HostBuffer&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(data_, capacity_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
  }
  return *this;
}

Result<HostBuffer> HostBuffer::Reserve(std::size_t capacity, std::size_t size) {
  if (size > capacity)
    return InvalidArgument("host buffer: size " + std::to_string(size) + " above capacity " +
                           std::to_string(capacity));
  // No MADV_HUGEPAGE: on the 2-vCPU VM, populating THP-backed memory ran at
  // 0.33-0.62 GB/s against 2.2-2.6 GB/s for 4 KiB pages (docs/BENCHMARKS.md).
  const std::size_t rounded = ((capacity == 0 ? 1 : capacity) + kPageBytes - 1) & ~(kPageBytes - 1);
  void* p = ::mmap(nullptr, rounded, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return ResourceExhausted("host buffer: cannot reserve " + std::to_string(rounded) +
                             " bytes of address space: " + std::strerror(errno));
  HostBuffer b;
  b.data_ = static_cast<char*>(p);
  b.capacity_ = rounded;
  b.size_ = size;
  return b;
}

Status HostBuffer::Grow(std::size_t new_size) {
  if (new_size > capacity_)
    return ResourceExhausted("host buffer: cannot grow to " + std::to_string(new_size) +
                             " bytes within a " + std::to_string(capacity_) + "-byte reservation");
  if (new_size > size_) size_ = new_size;
  return Status::Ok();
}

Status HostBuffer::Prefault(std::size_t offset, std::size_t bytes, PrefaultMethod* used) {
  if (offset > size_ || bytes > size_ - offset)
    return InvalidArgument("host buffer: prefault range beyond size");
  if (bytes == 0) return Status::Ok();
  // madvise wants a page-aligned start.
  const std::size_t begin = offset & ~(kPageBytes - 1);
  const std::size_t end = offset + bytes;
  if (::madvise(data_ + begin, end - begin, MADV_POPULATE_WRITE) == 0) {
    if (used) *used = PrefaultMethod::kPopulateWrite;
    return Status::Ok();
  }
  if (errno != EINVAL)
    return ResourceExhausted("host buffer: prefault of " + std::to_string(bytes) +
                             " bytes failed: " + std::strerror(errno));
  // Older kernel: touch one byte per page (a write keeps the page private).
  volatile char* p = data_;
  for (std::size_t at = begin; at < end; at += kPageBytes) p[at] = p[at];
  if (used) *used = PrefaultMethod::kTouch;
  return Status::Ok();
}

Status HostBuffer::PrefaultParallel(std::size_t offset, std::size_t bytes, ThreadPool& pool) {
  const std::size_t parts = static_cast<std::size_t>(pool.size());
  if (parts <= 1 || bytes < 2 * kHugePageBytes) return Prefault(offset, bytes);
  const std::size_t step = (bytes / parts + kPageBytes - 1) & ~(kPageBytes - 1);
  TaskGroup group;
  std::vector<Status> results(parts);
  for (std::size_t i = 0; i < parts; ++i) {
    const std::size_t begin = std::min(bytes, i * step);
    const std::size_t n = std::min(bytes - begin, step);
    if (n == 0) continue;
    group.Add();
    pool.Post([this, &group, &results, i, offset, begin, n] {
      results[i] = Prefault(offset + begin, n);
      group.Done(true);
    });
  }
  group.Wait();
  for (Status& s : results)
    if (!s.ok()) return std::move(s);
  return Status::Ok();
}

Status HostBuffer::Decommit() {
  if (data_ == nullptr) return Status::Ok();
  if (::madvise(data_, capacity_, MADV_DONTNEED) != 0)
    return Internal(std::string("host buffer: decommit failed: ") + std::strerror(errno));
  size_ = 0;
  return Status::Ok();
}

PinKind LockWithMlock(void* data, std::size_t bytes, std::string* why) {
  if (bytes == 0) return PinKind::kMlock;
  if (::mlock(data, bytes) == 0) return PinKind::kMlock;
  if (why) *why = std::string("mlock: ") + std::strerror(errno);
  return PinKind::kPlain;
}

void UnlockMlock(void* data, std::size_t bytes) {
  if (bytes > 0) ::munlock(data, bytes);
}

}  // namespace residency::io
