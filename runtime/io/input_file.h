// An open file for reading, buffered and optionally O_DIRECT, with the one
// primitive every reader uses: read exactly [offset, offset + n) into memory.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/base/status.h"

namespace residency::io {

// O_DIRECT needs file offset, length and memory aligned to the logical block
// size; 4 KiB covers every device we target.
inline constexpr std::size_t kDirectAlignment = 4096;

class InputFile {
 public:
  InputFile() = default;
  ~InputFile();
  InputFile(InputFile&& other) noexcept;
  InputFile& operator=(InputFile&& other) noexcept;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  // `direct`: also opens an O_DIRECT descriptor (an error names the file when
  // the filesystem refuses it, e.g. tmpfs).
  static Result<InputFile> Open(const std::string& path, bool direct);

  const std::string& path() const { return path_; }
  std::uint64_t size() const { return size_; }
  bool direct() const { return direct_fd_ >= 0; }

  // Reads exactly n bytes at `offset` into dst. Direct mode reads aligned
  // spans straight into dst and the rest through `bounce`: kDirectAlignment-
  // aligned, at least n + 2 * kDirectAlignment bytes. Buffered mode ignores it.
  Status ReadExact(std::uint64_t offset, std::size_t n, char* dst, char* bounce) const;
  // posix_fadvise(DONTNEED): drop the range from the page cache.
  void DropCache(std::uint64_t offset, std::uint64_t n) const;

 private:
  Status ReadViaBounce(std::uint64_t offset, std::size_t n, char* dst, char* bounce) const;
  Status PreadAll(int fd, std::uint64_t offset, std::size_t n, char* dst, bool allow_short,
                  std::size_t* got) const;

  std::string path_;
  int fd_ = -1;
  int direct_fd_ = -1;
  std::uint64_t size_ = 0;
};

}  // namespace residency::io
