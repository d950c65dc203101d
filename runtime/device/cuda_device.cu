// The CUDA backend: cudaMalloc'd device memory kept in a caching pool, one
// stream and one blocking-sync event per calling thread and device, each copy
// a cudaMemcpyAsync completed through that event, cudaHostRegister for
// page-locking. Built only when CMake finds nvcc; on a machine without a
// usable driver MakeCudaDevice returns the CUDA error (35 here) as a Status.
// docs/CUDA.md has the semantics this relies on.
#include <cuda_runtime.h>

#include <chrono>
#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "runtime/device/device_backend.h"

namespace residency::device {
namespace {

std::string CudaError(const std::string& what, cudaError_t err) {
  return what + ": " + cudaGetErrorName(err) + " (" + std::to_string(static_cast<int>(err)) +
         "): " + cudaGetErrorString(err);
}

// Reads and clears the runtime's last error, so that the next call does not
// report it again. (A sticky error, a corrupted context, stays regardless.)
void ClearLastError() { (void)cudaGetLastError(); }

std::string Version(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

// Error 35 has two causes, and the fix differs: say which one this is.
std::string NoGpuReason(cudaError_t err) {
  std::string s = "no usable CUDA GPU: " + CudaError("cudaGetDeviceCount", err);
  if (err != cudaErrorInsufficientDriver) return s;
  int driver = 0, runtime = 0;
  (void)cudaDriverGetVersion(&driver);  // 0 when no driver is loaded
  (void)cudaRuntimeGetVersion(&runtime);
  s += " (error 35 means either no NVIDIA driver, so no usable GPU, or a driver older than the CUDA runtime; here ";
  s += driver == 0 ? "no driver is loaded"
                   : "the driver supports CUDA " + Version(driver) + ", older than this build's runtime " +
                         Version(runtime);
  return s + ")";
}

// One thread's stream and completion event on one device. The event blocks
// (cudaEventBlockingSync): a copier thread sleeps in cudaEventSynchronize
// instead of spinning on a core the reader threads need.
struct ThreadStream {
  cudaStream_t stream = nullptr;
  cudaEvent_t done = nullptr;
  ThreadStream() = default;
  ThreadStream(const ThreadStream&) = delete;
  ThreadStream& operator=(const ThreadStream&) = delete;
  ~ThreadStream() {
    if (done) cudaEventDestroy(done);
    if (stream) cudaStreamDestroy(stream);
  }
};

class CudaDevice final : public DeviceBackend {
 public:
  CudaDevice(int ordinal, std::string name, std::uint64_t capacity)
      : ordinal_(ordinal), name_(std::move(name)), capacity_(capacity) {}

  ~CudaDevice() override {
    // At process exit the runtime may be gone already; nothing to report then.
    if (cudaSetDevice(ordinal_) != cudaSuccess) return;
    for (const auto& block : live_) cudaFree(reinterpret_cast<void*>(block.first));
    for (const auto& block : cached_) cudaFree(reinterpret_cast<void*>(block.second));
    ClearLastError();
  }

  std::string name() const override { return name_; }
  std::uint64_t capacity_bytes() const override { return capacity_; }
  std::uint64_t used_bytes() const override {  // live allocations only, not the cache
    std::lock_guard<std::mutex> lock(mu_);
    return used_;
  }

  // A caching allocator, as the host backend's and PyTorch's: a freed block
  // is kept, and a later allocation of its size takes it back without a
  // cudaMalloc. Cached blocks go back to cudaFree only when a new allocation
  // would not fit beside them, or when cudaMalloc itself runs out.
  Result<DevicePtr> Alloc(std::size_t bytes) override {
    RESIDENCY_RETURN_IF_ERROR(SetDevice());
    std::vector<DevicePtr> released;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (bytes > capacity_ - used_) return OutOfMemory(bytes);
      used_ += bytes;  // reserved while cudaMalloc runs unlocked
      if (auto hit = cached_.find(bytes); hit != cached_.end()) {
        const DevicePtr ptr = hit->second;
        cached_bytes_ -= bytes;
        cached_.erase(hit);
        live_.emplace(ptr, bytes);
        return ptr;
      }
      while (!cached_.empty() && used_ + cached_bytes_ > capacity_) TakeBiggestCached(released);
    }
    Result<DevicePtr> p = MallocOrDrainCache(bytes, released);
    std::lock_guard<std::mutex> lock(mu_);
    if (!p.ok()) {
      used_ -= bytes;
      return p.status();
    }
    live_.emplace(p.value(), bytes);
    return p;
  }

  // No cudaFree here: it may synchronize the whole device, and Free runs on
  // the executor's dispatch thread. The block waits in the cache instead.
  // Copies are complete when they return, so none is in flight into it.
  void Free(DevicePtr ptr) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(ptr);
    if (it == live_.end()) return;
    used_ -= it->second;
    cached_bytes_ += it->second;
    cached_.emplace(it->second, ptr);
    live_.erase(it);
  }

  Status CopyToDevice(DevicePtr dst, std::size_t dst_offset, const void* src,
                      std::size_t n) override {
    RESIDENCY_RETURN_IF_ERROR(Check(dst, dst_offset, n));
    return Copy(reinterpret_cast<char*>(dst) + dst_offset, src, n, cudaMemcpyHostToDevice);
  }

  Status CopyToHost(void* dst, DevicePtr src, std::size_t src_offset, std::size_t n) override {
    RESIDENCY_RETURN_IF_ERROR(Check(src, src_offset, n));
    return Copy(dst, reinterpret_cast<const char*>(src) + src_offset, n, cudaMemcpyDeviceToHost);
  }

  io::PinKind RegisterHost(void* data, std::size_t bytes, std::string* why) override {
    std::string cuda_why;
    if (Status s = SetDevice(); !s.ok()) {
      cuda_why = s.message();
    } else {
      const cudaError_t err = cudaHostRegister(data, bytes, cudaHostRegisterDefault);
      if (err == cudaSuccess) return io::PinKind::kCuda;
      ClearLastError();
      cuda_why = CudaError("cudaHostRegister", err);
    }
    // mlock keeps the pages resident, but the driver does not know they are
    // locked: a copy from them is still staged as from pageable memory.
    std::string mlock_why;
    const io::PinKind kind = io::LockWithMlock(data, bytes, &mlock_why);
    if (why)
      *why = kind == io::PinKind::kMlock
                 ? cuda_why + "; fell back to mlock (resident, but copies from it are staged like pageable ones)"
                 : cuda_why + "; then " + mlock_why;
    return kind;
  }

  void UnregisterHost(void* data, std::size_t bytes, io::PinKind kind) override {
    if (kind == io::PinKind::kMlock) io::UnlockMlock(data, bytes);
    if (kind != io::PinKind::kCuda) return;
    if (cudaSetDevice(ordinal_) != cudaSuccess || cudaHostUnregister(data) != cudaSuccess) ClearLastError();
  }

  Status Compute(Nanos ns) override {
    std::this_thread::sleep_for(std::chrono::nanoseconds(ns));
    return Status::Ok();
  }

 private:
  Status OutOfMemory(std::size_t bytes) const {  // mu_ held
    return ResourceExhausted(name_ + ": out of memory: " + std::to_string(bytes) + " bytes wanted, " +
                             std::to_string(capacity_ - used_) + " of " + std::to_string(capacity_) + " free");
  }

  void TakeBiggestCached(std::vector<DevicePtr>& out) {  // mu_ held
    auto biggest = std::prev(cached_.end());
    cached_bytes_ -= biggest->first;
    out.push_back(biggest->second);
    cached_.erase(biggest);
  }

  // cudaFree's `release` (each may synchronize the device: only when the
  // cache gives way), then cudaMalloc's `bytes`. The device is set.
  Result<DevicePtr> Malloc(std::size_t bytes, std::vector<DevicePtr>& release) {
    for (DevicePtr block : release)
      if (cudaFree(reinterpret_cast<void*>(block)) != cudaSuccess) ClearLastError();
    release.clear();
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, bytes == 0 ? 1 : bytes);
    if (err == cudaSuccess) return reinterpret_cast<DevicePtr>(p);
    ClearLastError();
    const std::string what = name_ + ": " + CudaError("cudaMalloc(" + std::to_string(bytes) + " bytes)", err);
    return err == cudaErrorMemoryAllocation ? ResourceExhausted(what) : Internal(what);
  }

  // cudaMalloc, and if the device is out of memory all the same (another
  // process, fragmentation), the whole cache given back and one more try.
  Result<DevicePtr> MallocOrDrainCache(std::size_t bytes, std::vector<DevicePtr>& release) {
    Result<DevicePtr> p = Malloc(bytes, release);
    if (p.ok() || p.status().code() != StatusCode::kResourceExhausted) return p;
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (!cached_.empty()) TakeBiggestCached(release);
    }
    if (release.empty()) return p;
    return Malloc(bytes, release);
  }

  // As the host backend's: a copy must stay inside one live allocation.
  Status Check(DevicePtr ptr, std::size_t offset, std::size_t n) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(ptr);
    if (it == live_.end()) return Internal("cuda device: copy to or from an unknown allocation");
    const std::size_t size = it->second;
    if (offset > size || n > size - offset)
      return Internal("cuda device: copy of " + std::to_string(n) + " bytes at offset " + std::to_string(offset) +
                      " overruns a " + std::to_string(size) + "-byte allocation");
    return Status::Ok();
  }

  Status SetDevice() const {
    const cudaError_t err = cudaSetDevice(ordinal_);
    if (err == cudaSuccess) return Status::Ok();
    ClearLastError();
    return Internal(CudaError("cudaSetDevice(" + std::to_string(ordinal_) + ")", err));
  }

  // This thread's stream and event on this device, created on first use. A
  // failure leaves nothing behind, so the next copy tries again.
  Result<ThreadStream*> StreamForThisThread() {
    thread_local std::unordered_map<int, ThreadStream> streams;
    if (auto it = streams.find(ordinal_); it != streams.end()) return &it->second;
    cudaStream_t stream = nullptr;
    cudaError_t err = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    if (err != cudaSuccess) {
      ClearLastError();
      return Internal(CudaError("cudaStreamCreateWithFlags", err));
    }
    cudaEvent_t done = nullptr;
    err = cudaEventCreateWithFlags(&done, cudaEventBlockingSync | cudaEventDisableTiming);
    if (err != cudaSuccess) {
      ClearLastError();
      cudaStreamDestroy(stream);
      return Internal(CudaError("cudaEventCreateWithFlags", err));
    }
    ThreadStream& ts = streams[ordinal_];
    ts.stream = stream;
    ts.done = done;
    return &ts;
  }

  Status Copy(void* dst, const void* src, std::size_t n, cudaMemcpyKind kind) {
    if (n == 0) return Status::Ok();
    RESIDENCY_RETURN_IF_ERROR(SetDevice());
    RESIDENCY_ASSIGN_OR_RETURN(ThreadStream* ts, StreamForThisThread());
    const char* call = "cudaMemcpyAsync";
    cudaError_t err = cudaMemcpyAsync(dst, src, n, kind, ts->stream);
    if (err == cudaSuccess) {
      call = "cudaEventRecord";
      err = cudaEventRecord(ts->done, ts->stream);
    }
    if (err == cudaSuccess) {
      call = "cudaEventSynchronize";
      err = cudaEventSynchronize(ts->done);
    }
    if (err == cudaSuccess) return Status::Ok();
    ClearLastError();
    const char* direction = kind == cudaMemcpyHostToDevice ? "host to device" : "device to host";
    const std::string what = std::string(call) + " (" + std::to_string(n) + " bytes " + direction + ")";
    return Internal(name_ + ": " + CudaError(what, err));
  }

  const int ordinal_;
  const std::string name_;
  const std::uint64_t capacity_;
  mutable std::mutex mu_;
  std::uint64_t used_ = 0;                           // live allocations
  std::unordered_map<DevicePtr, std::size_t> live_;  // block -> bytes asked for
  std::multimap<std::size_t, DevicePtr> cached_;     // freed blocks, by size
  std::uint64_t cached_bytes_ = 0;
};

}  // namespace

bool CudaCompiledIn() { return true; }

Result<std::unique_ptr<DeviceBackend>> MakeCudaDevice(int ordinal) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    ClearLastError();
    return NotFound(NoGpuReason(err));
  }
  if (ordinal < 0 || ordinal >= count)
    return NotFound("CUDA device " + std::to_string(ordinal) + " does not exist (" +
                    std::to_string(count) + " found)");
  cudaDeviceProp prop{};
  std::size_t free_bytes = 0, total_bytes = 0;
  const char* call = "cudaGetDeviceProperties";
  err = cudaGetDeviceProperties(&prop, ordinal);
  if (err == cudaSuccess) {
    call = "cudaSetDevice";
    err = cudaSetDevice(ordinal);
  }
  if (err == cudaSuccess) {
    call = "cudaMemGetInfo";  // the first call that needs the context: creates it
    err = cudaMemGetInfo(&free_bytes, &total_bytes);
  }
  if (err != cudaSuccess) {
    ClearLastError();
    return NotFound("no usable CUDA GPU: device " + std::to_string(ordinal) + ": " + CudaError(call, err));
  }
  return std::unique_ptr<DeviceBackend>(std::make_unique<CudaDevice>(
      ordinal, "cuda:" + std::to_string(ordinal) + " " + prop.name, free_bytes));
}

}  // namespace residency::device
