#include "runtime/safetensors/header.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "runtime/base/input_text.h"
#include "runtime/safetensors/header_sax.h"

namespace residency::safetensors {
namespace {

std::string Prefix(std::string_view origin) {
  return std::string(origin) + ": safetensors: ";
}

std::string ShapeString(const std::vector<std::uint64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

Status CheckTensorSize(const TensorInfo& t, std::string_view origin) {
  if (t.end < t.begin)
    return InvalidArgument(Prefix(origin) + "tensor '" + t.name + "': data_offsets [" +
                           std::to_string(t.begin) + "," + std::to_string(t.end) +
                           "] end before begin");
  std::uint64_t bytes = ItemSize(t.dtype);
  for (std::uint64_t dim : t.shape)
    if (__builtin_mul_overflow(bytes, dim, &bytes))
      return InvalidArgument(Prefix(origin) + "tensor '" + t.name + "': shape " +
                             ShapeString(t.shape) + " overflows 64 bits");
  if (bytes != t.end - t.begin)
    return InvalidArgument(Prefix(origin) + "tensor '" + t.name + "': shape " +
                           ShapeString(t.shape) + " x " + std::to_string(ItemSize(t.dtype)) +
                           " bytes (" + std::string(ToString(t.dtype)) + ") = " +
                           std::to_string(bytes) + " bytes but data_offsets span " +
                           std::to_string(t.end - t.begin));
  return Status::Ok();
}

// Sorted by offset, the tensors must tile [0, data_bytes) exactly.
Status CheckLayout(std::vector<TensorInfo>& tensors, std::uint64_t data_bytes,
                   std::string_view origin) {
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t cursor = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo& t : tensors) {
    if (t.begin > cursor)
      return InvalidArgument(Prefix(origin) + "hole in the data buffer: bytes [" +
                             std::to_string(cursor) + "," + std::to_string(t.begin) +
                             ") belong to no tensor (before tensor '" + t.name + "')");
    if (t.begin < cursor)
      return InvalidArgument(Prefix(origin) + "tensor '" + t.name + "' at [" +
                             std::to_string(t.begin) + "," + std::to_string(t.end) +
                             ") overlaps tensor '" + previous->name + "'");
    cursor = t.end;
    previous = &t;
  }
  if (cursor > data_bytes)
    return DataLoss(Prefix(origin) + "truncated: tensors need " + std::to_string(cursor) +
                    " data bytes but the file holds " + std::to_string(data_bytes));
  if (cursor < data_bytes)
    return InvalidArgument(Prefix(origin) + "trailing bytes: tensors end at data byte " +
                           std::to_string(cursor) + " but the file holds " +
                           std::to_string(data_bytes));
  return Status::Ok();
}

}  // namespace

Result<std::uint64_t> ParseHeaderLength(const unsigned char prefix[8], std::uint64_t file_bytes,
                                        std::string_view origin) {
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | prefix[i];
  if (n > kMaxHeaderBytes)
    return InvalidArgument(Prefix(origin) + "header length " + std::to_string(n) +
                           " exceeds the " + std::to_string(kMaxHeaderBytes) + "-byte cap");
  if (n < 2)
    return InvalidArgument(Prefix(origin) + "header length " + std::to_string(n) +
                           " is too small for a JSON object");
  if (n > file_bytes - std::min(file_bytes, kLengthPrefixBytes))
    return DataLoss(Prefix(origin) + "truncated: header length " + std::to_string(n) +
                    " but only " + std::to_string(file_bytes - std::min(file_bytes, kLengthPrefixBytes)) +
                    " bytes follow the length prefix");
  return n;
}

Result<Header> ParseHeader(std::string_view json, std::uint64_t file_bytes,
                           std::string_view origin) {
  Header header;
  header.header_bytes = json.size();
  header.data_offset = kLengthPrefixBytes + json.size();
  if (header.data_offset > file_bytes)
    return DataLoss(Prefix(origin) + "truncated inside the header");
  header.data_bytes = file_bytes - header.data_offset;
  RESIDENCY_RETURN_IF_ERROR(CheckJsonBytes(json, Prefix(origin) + "header"));
  HeaderSax sax;
  const bool parsed = nlohmann::json::sax_parse(json.begin(), json.end(), &sax,
                                                nlohmann::json::input_format_t::json, true);
  if (!parsed || !sax.error().empty())
    return InvalidArgument(Prefix(origin) + "header: " +
                           (sax.error().empty() ? "invalid JSON" : sax.error()));
  header.tensors = std::move(sax.tensors());
  header.metadata = std::move(sax.metadata());
  for (const TensorInfo& t : header.tensors) RESIDENCY_RETURN_IF_ERROR(CheckTensorSize(t, origin));
  RESIDENCY_RETURN_IF_ERROR(CheckLayout(header.tensors, header.data_bytes, origin));
  return header;
}

Result<Header> ParseFileImage(std::string_view image, std::string_view origin) {
  if (image.size() < kLengthPrefixBytes)
    return DataLoss(Prefix(origin) + "truncated: " + std::to_string(image.size()) +
                    " bytes, shorter than the 8-byte header length");
  RESIDENCY_ASSIGN_OR_RETURN(
      const std::uint64_t n,
      ParseHeaderLength(reinterpret_cast<const unsigned char*>(image.data()), image.size(), origin));
  return ParseHeader(image.substr(kLengthPrefixBytes, n), image.size(), origin);
}

Result<Header> ReadHeader(const std::string& path) {
  // O_NONBLOCK: a FIFO is refused below, never waited on.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return NotFound(Printable(path) + ": cannot open: " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Internal(path + ": fstat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return InvalidArgument(Printable(path) + ": not a regular file (only regular files are read)");
  const auto file_bytes = static_cast<std::uint64_t>(st.st_size);
  auto read_exact = [&](void* dst, std::size_t n, off_t offset) -> Status {
    std::size_t done = 0;
    while (done < n) {
      const ssize_t r = ::pread(fd, static_cast<char*>(dst) + done, n - done, offset + done);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Internal(path + ": read: " + std::strerror(errno));
      if (r == 0) return DataLoss(path + ": safetensors: truncated while reading the header");
      done += static_cast<std::size_t>(r);
    }
    return Status::Ok();
  };
  if (file_bytes < kLengthPrefixBytes)
    return DataLoss(Prefix(path) + "truncated: " + std::to_string(file_bytes) +
                    " bytes, shorter than the 8-byte header length");
  unsigned char prefix[8];
  RESIDENCY_RETURN_IF_ERROR(read_exact(prefix, 8, 0));
  RESIDENCY_ASSIGN_OR_RETURN(const std::uint64_t n, ParseHeaderLength(prefix, file_bytes, path));
  std::string json(n, '\0');
  RESIDENCY_RETURN_IF_ERROR(read_exact(json.data(), n, 8));
  return ParseHeader(json, file_bytes, path);
}

}  // namespace residency::safetensors
