#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <map>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "runtime/device/device_backend.h"

namespace residency::device {
namespace {

class HostDevice final : public DeviceBackend {
 public:
  explicit HostDevice(std::uint64_t capacity)
      : capacity_(capacity),
        prefault_pool_(io::CoreCount()) {}

  // The whole capacity reserved and faulted in up front, then carved up
  // first-fit: allocations cost nothing, as on a GPU whose VRAM is resident.
  Status MakeResidentArena() {
    auto arena = io::HostBuffer::Reserve(capacity_, capacity_);
    if (!arena.ok()) return arena.status();
    RESIDENCY_RETURN_IF_ERROR(arena->PrefaultParallel(0, capacity_, prefault_pool_));
    arena_ = std::move(arena).value();
    free_ranges_[0] = capacity_;
    return Status::Ok();
  }

  std::string name() const override {
    return "host (emulated device, " + std::to_string(capacity_ >> 20) + " MiB)";
  }
  bool copies_on_cpu() const override { return true; }
  std::uint64_t capacity_bytes() const override { return capacity_; }
  std::uint64_t used_bytes() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return used_;
  }

  Result<DevicePtr> Alloc(std::size_t bytes) override {
    if (arena_) return ArenaAlloc(bytes);
    std::vector<io::HostBuffer> released;  // unmapped outside the lock
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (bytes > capacity_ - used_) return OutOfMemory(bytes);
      used_ += bytes;
      // A freed block of this size is reused as it is, resident already: a
      // caching allocator, as PyTorch's is on a real GPU.
      if (auto hit = cached_.find(bytes); hit != cached_.end()) {
        const auto ptr = reinterpret_cast<DevicePtr>(hit->second.data());
        cached_bytes_ -= bytes;
        allocations_.emplace(ptr, std::move(hit->second));
        cached_.erase(hit);
        return ptr;
      }
      // Cached blocks give way to a new allocation that would not fit beside them.
      while (!cached_.empty() && used_ + cached_bytes_ > capacity_) {
        auto biggest = std::prev(cached_.end());
        cached_bytes_ -= biggest->first;
        released.push_back(std::move(biggest->second));
        cached_.erase(biggest);
      }
    }
    released.clear();
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
    std::lock_guard<std::mutex> lock(mu_);
    if (arena_) return ArenaFree(ptr);
    auto it = allocations_.find(ptr);
    if (it == allocations_.end()) return;
    const std::size_t size = it->second.size();
    used_ -= size;
    cached_bytes_ += size;
    cached_.emplace(size, std::move(it->second));
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

  Status Compute(Nanos ns) override {
    std::this_thread::sleep_for(std::chrono::nanoseconds(ns));
    return Status::Ok();
  }

 private:
  static constexpr std::size_t kArenaAlign = 4096;

  Status OutOfMemory(std::size_t bytes) const {  // mu_ held
    return ResourceExhausted("host device: out of memory: " + std::to_string(bytes) + " bytes wanted, " +
                             std::to_string(capacity_ - used_) + " of " + std::to_string(capacity_) + " free");
  }

  Result<DevicePtr> ArenaAlloc(std::size_t bytes) {
    const std::size_t rounded = std::max<std::size_t>(kArenaAlign, (bytes + kArenaAlign - 1) / kArenaAlign * kArenaAlign);
    std::lock_guard<std::mutex> lock(mu_);
    if (bytes > capacity_ - used_) return OutOfMemory(bytes);
    for (auto it = free_ranges_.begin(); it != free_ranges_.end(); ++it) {
      if (it->second < rounded) continue;
      const std::size_t offset = it->first, size = it->second;
      free_ranges_.erase(it);
      if (size > rounded) free_ranges_[offset + rounded] = size - rounded;
      const auto ptr = reinterpret_cast<DevicePtr>(arena_->data() + offset);
      live_[ptr] = {offset, rounded, bytes};
      used_ += bytes;
      return ptr;
    }
    return ResourceExhausted("host device: no free range of " + std::to_string(rounded) + " bytes (" +
                             std::to_string(capacity_ - used_) + " free but fragmented)");
  }

  void ArenaFree(DevicePtr ptr) {  // mu_ held
    auto it = live_.find(ptr);
    if (it == live_.end()) return;
    auto [offset, size, bytes] = it->second;
    used_ -= bytes;
    live_.erase(it);
    auto next = free_ranges_.lower_bound(offset);
    if (next != free_ranges_.end() && offset + size == next->first) {
      size += next->second;
      next = free_ranges_.erase(next);
    }
    if (next != free_ranges_.begin()) {
      auto prev = std::prev(next);
      if (prev->first + prev->second == offset) {
        prev->second += size;
        return;
      }
    }
    free_ranges_[offset] = size;
  }

  Status Check(DevicePtr ptr, std::size_t offset, std::size_t n) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::size_t size = 0;
    if (arena_) {
      auto it = live_.find(ptr);
      if (it == live_.end()) return Internal("host device: copy to or from an unknown allocation");
      size = std::get<2>(it->second);
    } else {
      auto it = allocations_.find(ptr);
      if (it == allocations_.end()) return Internal("host device: copy to or from an unknown allocation");
      size = it->second.size();
    }
    if (offset > size || n > size - offset)
      return Internal("host device: copy of " + std::to_string(n) + " bytes at offset " + std::to_string(offset) +
                      " overruns a " + std::to_string(size) + "-byte allocation");
    return Status::Ok();
  }

  const std::uint64_t capacity_;
  mutable std::mutex mu_;
  std::uint64_t used_ = 0;
  std::unordered_map<DevicePtr, io::HostBuffer> allocations_;
  std::multimap<std::size_t, io::HostBuffer> cached_;  // freed blocks, resident, by size
  std::uint64_t cached_bytes_ = 0;
  std::optional<io::HostBuffer> arena_;                // resident-arena mode only
  std::map<std::size_t, std::size_t> free_ranges_;     // offset -> size
  std::unordered_map<DevicePtr, std::tuple<std::size_t, std::size_t, std::size_t>> live_;  // offset, size, bytes
  io::ThreadPool prefault_pool_;
};

}  // namespace

std::unique_ptr<DeviceBackend> MakeHostDevice(std::uint64_t capacity_bytes) {
  return std::make_unique<HostDevice>(capacity_bytes);
}

Result<std::unique_ptr<DeviceBackend>> MakeResidentHostDevice(std::uint64_t capacity_bytes) {
  auto device = std::make_unique<HostDevice>(capacity_bytes);
  RESIDENCY_RETURN_IF_ERROR(device->MakeResidentArena());
  return std::unique_ptr<DeviceBackend>(std::move(device));
}

}  // namespace residency::device
