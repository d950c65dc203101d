// Host memory for weights: a reserved address range that grows in place, is
// prefaulted ahead of use, page-locked when asked and decommitted without a
// munmap/mmap round trip. Anonymous memory, 4 KiB pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/base/status.h"
#include "runtime/io/thread_pool.h"

namespace residency::io {

// How a buffer's pages ended up locked; reported, never hidden.
enum class PinKind : std::uint8_t {
  kNone,      // not asked
  kCuda,      // cudaHostRegister: DMA-able by the GPU
  kMlock,     // mlock: resident, but the GPU would still stage it
  kPlain,     // asked, but neither worked: ordinary pageable memory
};
std::string_view ToString(PinKind kind);

// Prefaulting: MADV_POPULATE_WRITE (Linux 5.14+) where the kernel has it,
// else touching one byte per page.
enum class PrefaultMethod : std::uint8_t { kPopulateWrite, kTouch };
std::string_view ToString(PrefaultMethod method);

class HostBuffer {
 public:
  HostBuffer() = default;
  ~HostBuffer();
  HostBuffer(HostBuffer&& other) noexcept;
  HostBuffer& operator=(HostBuffer&& other) noexcept;
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;

  // Reserves `capacity` bytes of address space (no memory is committed until
  // touched) and sets the size to `size` (<= capacity).
  static Result<HostBuffer> Reserve(std::size_t capacity, std::size_t size);

  char* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return capacity_; }

  // Grows the usable size within the reservation.
  Status Grow(std::size_t new_size);
  // Faults [offset, offset + bytes) in for writing.
  Status Prefault(std::size_t offset, std::size_t bytes, PrefaultMethod* used = nullptr);
  // The same, split across `pool`'s threads: faulting is CPU-bound and
  // scales with cores (2 threads: 4.6-4.7 GB/s vs 2.8-3.2 GB/s for one here).
  Status PrefaultParallel(std::size_t offset, std::size_t bytes, ThreadPool& pool);
  // Returns the memory to the OS but keeps the reservation (size becomes 0).
  Status Decommit();

 private:
  char* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

// Page-locks memory with mlock; kPlain with `why` set when not permitted.
PinKind LockWithMlock(void* data, std::size_t bytes, std::string* why);
void UnlockMlock(void* data, std::size_t bytes);

inline constexpr std::size_t kPageBytes = 4096;
inline constexpr std::size_t kHugePageBytes = 2u << 20;

}  // namespace residency::io
