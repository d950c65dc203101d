// Reads a byte range of a file with N threads: the range is cut into chunks
// and each thread claims the next chunk until none is left. Tensors that
// straddle chunks, tiny ranges and huge ones are all just byte ranges here.
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/base/status.h"
#include "runtime/io/input_file.h"
#include "runtime/io/thread_pool.h"

namespace residency::io {

// Measured on the 2-vCPU sandbox (docs/BENCHMARKS.md, "chunk size"): 8 MiB
// reaches the warm-cache plateau with 2 threads; smaller chunks cost syscalls.
inline constexpr std::size_t kDefaultChunkBytes = 8u << 20;

struct ReaderOptions {
  int threads = 2;
  std::size_t chunk_bytes = kDefaultChunkBytes;
  bool drop_cache_after = false;  // posix_fadvise(DONTNEED) each chunk once read
};

class ThreadedReader {
 public:
  explicit ThreadedReader(ReaderOptions options);

  const ReaderOptions& options() const { return options_; }
  ThreadPool& pool() { return pool_; }

  // Blocking: returns when every chunk has landed or the first error.
  Status Read(const InputFile& file, std::uint64_t offset, std::size_t n, char* dst);

 private:
  ReaderOptions options_;
  ThreadPool pool_;
};

// A kDirectAlignment-aligned scratch buffer of at least `bytes`, one per
// calling thread, reused across calls.
char* ThreadBounceBuffer(std::size_t bytes);

}  // namespace residency::io
