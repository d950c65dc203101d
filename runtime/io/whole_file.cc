#include "runtime/io/whole_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/base/input_text.h"

namespace residency::io {

namespace {
std::string KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}
}  // namespace

Result<std::string> ReadWholeFile(const std::string& path, std::int64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return NotFound(Printable(path) + ": cannot open file: " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Internal(Printable(path) + ": fstat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return InvalidArgument(Printable(path) + ": " + KindOf(st.st_mode) + ", not a regular file; only regular files are read");
  if (st.st_size > max_bytes)
    return InvalidArgument(Printable(path) + ": " + std::to_string(st.st_size) + " bytes, above the limit of " +
                           std::to_string(max_bytes) + " for this kind of file (docs/LIMITS.md)");
  std::string text;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return DataLoss(Printable(path) + ": read error: " + std::strerror(errno));
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (static_cast<std::int64_t>(text.size()) > max_bytes)  // it grew while being read
      return InvalidArgument(Printable(path) + ": grew past the limit of " + std::to_string(max_bytes) +
                             " bytes while being read");
  }
  return text;
}

}  // namespace residency::io
