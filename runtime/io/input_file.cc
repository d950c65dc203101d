#include "runtime/io/input_file.h"

#include "runtime/base/input_text.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace residency::io {

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
  if (direct_fd_ >= 0) ::close(direct_fd_);
}

InputFile::InputFile(InputFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      direct_fd_(std::exchange(other.direct_fd_, -1)),
      size_(other.size_) {}

InputFile& InputFile::operator=(InputFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    if (direct_fd_ >= 0) ::close(direct_fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    direct_fd_ = std::exchange(other.direct_fd_, -1);
    size_ = other.size_;
  }
  return *this;
}

Result<InputFile> InputFile::Open(const std::string& path, bool direct) {
  InputFile f;
  f.path_ = path;
  // O_NONBLOCK: a FIFO must be refused, not waited on (no effect on files).
  f.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (f.fd_ < 0) return NotFound(Printable(path) + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(f.fd_, &st) != 0) return Internal(path + ": fstat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return InvalidArgument(Printable(path) + ": not a regular file (only regular files are read)");
  f.size_ = static_cast<std::uint64_t>(st.st_size);
  if (direct) {
    f.direct_fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (f.direct_fd_ < 0)
      return InvalidArgument(path + ": O_DIRECT not supported here: " + std::strerror(errno));
  }
  return f;
}

Status InputFile::PreadAll(int fd, std::uint64_t offset, std::size_t n, char* dst,
                           bool allow_short, std::size_t* got) const {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, dst + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0)
      return Internal(path_ + ": read of " + std::to_string(n) + " bytes at offset " +
                      std::to_string(offset) + " failed: " + std::strerror(errno));
    if (r == 0) break;
    done += static_cast<std::size_t>(r);
  }
  if (got) *got = done;
  if (done < n && !allow_short)
    return DataLoss(path_ + ": truncated: wanted " + std::to_string(n) + " bytes at offset " +
                    std::to_string(offset) + ", the file ended after " + std::to_string(done));
  return Status::Ok();
}

Status InputFile::ReadExact(std::uint64_t offset, std::size_t n, char* dst, char* bounce) const {
  if (offset > size_ || n > size_ - offset)
    return DataLoss(path_ + ": truncated: wanted bytes [" + std::to_string(offset) + "," +
                    std::to_string(offset + n) + ") of a " + std::to_string(size_) +
                    "-byte file");
  if (direct_fd_ < 0 || n == 0) return PreadAll(fd_, offset, n, dst, false, nullptr);
  const std::uint64_t a = kDirectAlignment;
  const auto addr = reinterpret_cast<std::uintptr_t>(dst);
  if ((addr - offset) % a != 0) return ReadViaBounce(offset, n, dst, bounce);
  // dst and the file share their misalignment: unaligned head and tail go
  // through the bounce buffer, the aligned body straight into dst.
  const std::size_t head = static_cast<std::size_t>(std::min<std::uint64_t>(n, (a - offset % a) % a));
  const std::size_t body = (n - head) & ~std::size_t{a - 1};
  const std::size_t tail = n - head - body;
  if (head > 0) RESIDENCY_RETURN_IF_ERROR(ReadViaBounce(offset, head, dst, bounce));
  if (body > 0) RESIDENCY_RETURN_IF_ERROR(PreadAll(direct_fd_, offset + head, body, dst + head, false, nullptr));
  if (tail > 0)
    RESIDENCY_RETURN_IF_ERROR(ReadViaBounce(offset + head + body, tail, dst + head + body, bounce));
  return Status::Ok();
}

Status InputFile::ReadViaBounce(std::uint64_t offset, std::size_t n, char* dst, char* bounce) const {
  // Read the aligned superset, copy out. The last block may run past the end
  // of the file: a short read there is fine.
  const std::uint64_t begin = offset & ~std::uint64_t{kDirectAlignment - 1};
  const std::uint64_t end = (offset + n + kDirectAlignment - 1) & ~std::uint64_t{kDirectAlignment - 1};
  std::size_t got = 0;
  RESIDENCY_RETURN_IF_ERROR(PreadAll(direct_fd_, begin, end - begin, bounce, true, &got));
  if (got < offset + n - begin)
    return DataLoss(path_ + ": truncated: O_DIRECT read at offset " + std::to_string(begin) +
                    " returned " + std::to_string(got) + " bytes");
  std::memcpy(dst, bounce + (offset - begin), n);
  return Status::Ok();
}

void InputFile::DropCache(std::uint64_t offset, std::uint64_t n) const {
  ::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(n), POSIX_FADV_DONTNEED);
}

}  // namespace residency::io
