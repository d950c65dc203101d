#include "runtime/safetensors/writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "runtime/base/splitmix64.h"

namespace residency::safetensors {
namespace {

std::uint64_t TensorBytes(const TensorSpec& t) {
  std::uint64_t bytes = ItemSize(t.dtype);
  for (std::uint64_t d : t.shape) bytes *= d;
  return bytes;
}

}  // namespace

TensorSpec TensorOfBytes(std::string name, std::uint64_t bytes) {
  if (bytes % 2 == 0) return {std::move(name), DType::kBF16, {bytes / 2}};
  return {std::move(name), DType::kU8, {bytes}};
}

std::string HeaderJson(const std::vector<TensorSpec>& tensors) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["__metadata__"] = {{"format", "pt"}, {"generator", "residency gen-model"}};
  std::uint64_t offset = 0;
  for (const TensorSpec& t : tensors) {
    const std::uint64_t bytes = TensorBytes(t);
    header[t.name] = {{"dtype", std::string(ToString(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  return header.dump();
}

Result<std::vector<TensorSpec>> FitToFileSize(const std::string& origin,
                                              const std::vector<std::int64_t>& tensor_bytes,
                                              std::int64_t file_bytes) {
  std::vector<std::int64_t> sizes = tensor_bytes;
  if (sizes.empty()) sizes.push_back(file_bytes);
  const auto largest = static_cast<std::size_t>(std::max_element(sizes.begin(), sizes.end()) - sizes.begin());
  // The header's length depends on the sizes' digits and dtypes: iterate.
  for (int attempt = 0; attempt < 16; ++attempt) {
    std::vector<TensorSpec> specs;
    std::int64_t data = 0;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      if (sizes[i] < 0) return InvalidArgument(origin + ": negative tensor size");
      specs.push_back(TensorOfBytes("t" + std::to_string(i), static_cast<std::uint64_t>(sizes[i])));
      data += sizes[i];
    }
    const auto header = static_cast<std::int64_t>(8 + (HeaderJson(specs).size() + 7) / 8 * 8);
    const std::int64_t diff = header + data - file_bytes;
    if (diff == 0) return specs;
    if (sizes[largest] - diff <= 0)
      return InvalidArgument(origin + ": " + std::to_string(file_bytes) +
                             " bytes cannot hold its tensors and a " + std::to_string(header) +
                             "-byte safetensors header");
    sizes[largest] -= diff;
  }
  return Internal(origin + ": tensor sizes did not settle around the header size");
}

Status WriteFile(const std::string& path, const std::vector<TensorSpec>& tensors,
                 std::uint64_t seed, const std::function<void(std::uint64_t, std::uint64_t)>& progress) {
  std::string json = HeaderJson(tensors);
  json.append((8 - json.size() % 8) % 8, ' ');
  std::uint64_t data_bytes = 0;
  for (const TensorSpec& t : tensors) data_bytes += TensorBytes(t);

  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Internal(path + ": cannot create: " + std::strerror(errno));
  std::vector<unsigned char> block(4 << 20);
  auto write_all = [&](const unsigned char* p, std::size_t n) -> Status {
    while (n > 0) {
      const ssize_t w = ::write(fd, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return Internal(path + ": write: " + std::strerror(errno));
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    return Status::Ok();
  };
  Status status;
  unsigned char prefix[8];
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<unsigned char>(json.size() >> (8 * i));
  status = write_all(prefix, 8);
  if (status.ok())
    status = write_all(reinterpret_cast<const unsigned char*>(json.data()), json.size());
  std::uint64_t state = seed;
  for (std::uint64_t done = 0; status.ok() && done < data_bytes;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(block.size(), data_bytes - done));
    for (std::size_t i = 0; i < n; i += 8) {
      const std::uint64_t v = SplitMix64(state);
      std::memcpy(block.data() + i, &v, std::min<std::size_t>(8, n - i));
    }
    status = write_all(block.data(), n);
    done += n;
    if (progress && (done % (64 << 20) == 0 || done == data_bytes)) progress(done, data_bytes);
  }
  if (::close(fd) != 0 && status.ok()) status = Internal(path + ": close: " + std::strerror(errno));
  return status;
}

}  // namespace residency::safetensors
