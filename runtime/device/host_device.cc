#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "runtime/device/device_backend.h"

namespace residency::device {
namespace {

class HostDevice final : public DeviceBackend {
 public:
  explicit HostDevice(std::uint64_t capacity)
      : capacity_(capacity),
        prefault_pool_(static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))) {}

  std::string name() const override {
    return "host (emulated device, " + std::to_string(capacity_ >> 20) + " MiB)";
  }
  std::uint64_t capacity_bytes() const override { return capacity_; }
  std::uint64_t used_bytes() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return used_;
  }

  Result<DevicePtr> Alloc(std::size_t bytes) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (bytes > capacity_ - used_)
        return ResourceExhausted("host device: out of memory: " + std::to_string(bytes) +
                                 " bytes wanted, " + std::to_string(capacity_ - used_) +
                                 " of " + std::to_string(capacity_) + " free");
      used_ += bytes;
    }
    auto buffer = io::HostBuffer::Reserve(bytes, bytes);
    // Resident, as VRAM is: fault it all in now, on every core.
    Status s = buffer.ok() ? buffer->PrefaultParallel(0, bytes, prefault_pool_) : buffer.status();
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      used_ -= bytes;
      return s;
    }
    const auto ptr = reinterpret_cast<DevicePtr>(buffer->data());
    std::lock_guard<std::mutex> lock(mu_);
    allocations_.emplace(ptr, std::move(buffer).value());
    return ptr;
  }

  void Free(DevicePtr ptr) override {
    io::HostBuffer released;  // unmapped outside the lock
    std::lock_guard<std::mutex> lock(mu_);
    auto it = allocations_.find(ptr);
    if (it == allocations_.end()) return;
    used_ -= it->second.size();
    released = std::move(it->second);
    allocations_.erase(it);
  }

  Status CopyToDevice(DevicePtr dst, std::size_t dst_offset, const void* src,
                      std::size_t n) override {
    RESIDENCY_RETURN_IF_ERROR(Check(dst, dst_offset, n));
    std::memcpy(reinterpret_cast<char*>(dst) + dst_offset, src, n);
    return Status::Ok();
  }

  Status CopyToHost(void* dst, DevicePtr src, std::size_t src_offset, std::size_t n) override {
    RESIDENCY_RETURN_IF_ERROR(Check(src, src_offset, n));
    std::memcpy(dst, reinterpret_cast<const char*>(src) + src_offset, n);
    return Status::Ok();
  }

  io::PinKind RegisterHost(void* data, std::size_t bytes, std::string* why) override {
    return io::LockWithMlock(data, bytes, why);
  }
  void UnregisterHost(void* data, std::size_t bytes, io::PinKind kind) override {
    if (kind == io::PinKind::kMlock) io::UnlockMlock(data, bytes);
  }

  Status Compute(engine::Nanos ns) override {
    std::this_thread::sleep_for(std::chrono::nanoseconds(ns));
    return Status::Ok();
  }

 private:
  Status Check(DevicePtr ptr, std::size_t offset, std::size_t n) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = allocations_.find(ptr);
    if (it == allocations_.end())
      return Internal("host device: copy to or from an unknown allocation");
    if (offset > it->second.size() || n > it->second.size() - offset)
      return Internal("host device: copy of " + std::to_string(n) + " bytes at offset " +
                      std::to_string(offset) + " overruns a " +
                      std::to_string(it->second.size()) + "-byte allocation");
    return Status::Ok();
  }

  const std::uint64_t capacity_;
  mutable std::mutex mu_;
  std::uint64_t used_ = 0;
  std::unordered_map<DevicePtr, io::HostBuffer> allocations_;
  io::ThreadPool prefault_pool_;
};

}  // namespace

std::unique_ptr<DeviceBackend> MakeHostDevice(std::uint64_t capacity_bytes) {
  return std::make_unique<HostDevice>(capacity_bytes);
}

}  // namespace residency::device
