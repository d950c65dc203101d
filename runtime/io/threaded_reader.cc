#include "runtime/io/threaded_reader.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>

namespace residency::io {

char* ThreadBounceBuffer(std::size_t bytes) {
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<char, Free> buffer;
  thread_local std::size_t capacity = 0;
  const std::size_t want = (bytes + 2 * kDirectAlignment + kDirectAlignment - 1) &
                           ~(kDirectAlignment - 1);
  if (capacity < want) {
    buffer.reset(static_cast<char*>(std::aligned_alloc(kDirectAlignment, want)));
    capacity = buffer ? want : 0;
  }
  return buffer.get();
}

ThreadedReader::ThreadedReader(ReaderOptions options)
    : options_(options), pool_(std::max(1, options.threads)) {
  if (options_.chunk_bytes < kDirectAlignment) options_.chunk_bytes = kDirectAlignment;
  // Chunks on alignment boundaries keep O_DIRECT reads on the fast path.
  options_.chunk_bytes &= ~(kDirectAlignment - 1);
}

Status ThreadedReader::Read(const InputFile& file, std::uint64_t offset, std::size_t n,
                            char* dst) {
  if (n == 0) return Status::Ok();
  const std::size_t chunk = options_.chunk_bytes;
  const std::size_t chunks = (n + chunk - 1) / chunk;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  TaskGroup group;
  const int workers = static_cast<int>(std::min<std::size_t>(chunks, pool_.size()));
  std::vector<Status> errors(static_cast<std::size_t>(workers));
  group.Add(workers);
  for (int w = 0; w < workers; ++w) {
    pool_.Post([&, w] {
      char* bounce = file.direct() ? ThreadBounceBuffer(chunk) : nullptr;
      if (file.direct() && bounce == nullptr) {
        errors[w] = ResourceExhausted("cannot allocate an O_DIRECT bounce buffer");
        failed = true;
      }
      for (std::size_t i; !failed && (i = next.fetch_add(1)) < chunks;) {
        const std::size_t begin = i * chunk;
        const std::size_t len = std::min(chunk, n - begin);
        Status s = file.ReadExact(offset + begin, len, dst + begin, bounce);
        if (!s.ok()) {
          errors[w] = std::move(s);
          failed = true;
          break;
        }
        if (options_.drop_cache_after) file.DropCache(offset + begin, len);
      }
      group.Done(true);
    });
  }
  group.Wait();
  for (Status& s : errors)
    if (!s.ok()) return std::move(s);
  return Status::Ok();
}

}  // namespace residency::io
