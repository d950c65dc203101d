#include "runtime/io/meminfo.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace residency::io {

std::int64_t MemAvailableBytes() {
  // read(2) rather than a stream: this runs after every completion.
  const int fd = ::open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[4096];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char* at = std::strstr(buf, "MemAvailable:");
  if (!at) return -1;
  char* end = nullptr;
  const long long kib = std::strtoll(at + std::strlen("MemAvailable:"), &end, 10);
  if (end == at + std::strlen("MemAvailable:") || kib < 0) return -1;
  return static_cast<std::int64_t>(kib) * 1024;
}

}  // namespace residency::io
