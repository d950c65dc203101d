// The CUDA backend: cudaMalloc'd device memory, one stream per calling
// thread, cudaMemcpyAsync completed through an event, cudaHostRegister for
// page-locking. Built only when CMake finds nvcc; on a machine without a
// driver MakeCudaDevice returns the CUDA error (35 here) as a Status.
#include <cuda_runtime.h>

#include <chrono>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "runtime/device/device_backend.h"

namespace residency::device {
namespace {

std::string CudaError(const char* what, cudaError_t err) {
  return std::string(what) + ": " + cudaGetErrorName(err) + " (" +
         std::to_string(static_cast<int>(err)) + "): " + cudaGetErrorString(err);
}

// Per-thread stream and completion event, created on first use.
struct ThreadStream {
  cudaStream_t stream = nullptr;
  cudaEvent_t done = nullptr;
  ~ThreadStream() {
    if (done) cudaEventDestroy(done);
    if (stream) cudaStreamDestroy(stream);
  }
};

class CudaDevice final : public DeviceBackend {
 public:
  CudaDevice(int ordinal, std::string name, std::uint64_t capacity)
      : ordinal_(ordinal), name_(std::move(name)), capacity_(capacity) {}

  std::string name() const override { return name_; }
  std::uint64_t capacity_bytes() const override { return capacity_; }
  std::uint64_t used_bytes() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return used_;
  }

  Result<DevicePtr> Alloc(std::size_t bytes) override {
    cudaSetDevice(ordinal_);
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, bytes == 0 ? 1 : bytes);
    if (err != cudaSuccess) {
      cudaGetLastError();  // clear it, so the next call does not report it again
      return ResourceExhausted(CudaError("cudaMalloc", err));
    }
    std::lock_guard<std::mutex> lock(mu_);
    sizes_[reinterpret_cast<DevicePtr>(p)] = bytes;
    used_ += bytes;
    return reinterpret_cast<DevicePtr>(p);
  }

  void Free(DevicePtr ptr) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = sizes_.find(ptr);
      if (it == sizes_.end()) return;
      used_ -= it->second;
      sizes_.erase(it);
    }
    cudaFree(reinterpret_cast<void*>(ptr));
  }

  Status CopyToDevice(DevicePtr dst, std::size_t dst_offset, const void* src,
                      std::size_t n) override {
    return Copy(reinterpret_cast<char*>(dst) + dst_offset, src, n, cudaMemcpyHostToDevice);
  }

  Status CopyToHost(void* dst, DevicePtr src, std::size_t src_offset, std::size_t n) override {
    return Copy(dst, reinterpret_cast<const char*>(src) + src_offset, n, cudaMemcpyDeviceToHost);
  }

  io::PinKind RegisterHost(void* data, std::size_t bytes, std::string* why) override {
    const cudaError_t err = cudaHostRegister(data, bytes, cudaHostRegisterDefault);
    if (err == cudaSuccess) return io::PinKind::kCuda;
    cudaGetLastError();  // clear it
    if (why) *why = CudaError("cudaHostRegister", err);
    return io::LockWithMlock(data, bytes, why);
  }

  void UnregisterHost(void* data, std::size_t bytes, io::PinKind kind) override {
    if (kind == io::PinKind::kCuda) cudaHostUnregister(data);
    if (kind == io::PinKind::kMlock) io::UnlockMlock(data, bytes);
  }

  Status Compute(engine::Nanos ns) override {
    std::this_thread::sleep_for(std::chrono::nanoseconds(ns));
    return Status::Ok();
  }

 private:
  Status Copy(void* dst, const void* src, std::size_t n, cudaMemcpyKind kind) {
    thread_local ThreadStream ts;
    cudaSetDevice(ordinal_);
    cudaError_t err = cudaSuccess;
    if (!ts.stream) {
      err = cudaStreamCreateWithFlags(&ts.stream, cudaStreamNonBlocking);
      if (err == cudaSuccess) err = cudaEventCreateWithFlags(&ts.done, cudaEventDisableTiming);
      if (err != cudaSuccess) {
        cudaGetLastError();
        return Internal(CudaError("cudaStreamCreate", err));
      }
    }
    err = cudaMemcpyAsync(dst, src, n, kind, ts.stream);
    if (err == cudaSuccess) err = cudaEventRecord(ts.done, ts.stream);
    if (err == cudaSuccess) err = cudaEventSynchronize(ts.done);
    if (err != cudaSuccess) {
      cudaGetLastError();
      return Internal(CudaError("cudaMemcpyAsync", err));
    }
    return Status::Ok();
  }

  const int ordinal_;
  const std::string name_;
  const std::uint64_t capacity_;
  mutable std::mutex mu_;
  std::uint64_t used_ = 0;
  std::unordered_map<DevicePtr, std::size_t> sizes_;
};

}  // namespace

bool CudaCompiledIn() { return true; }

Result<std::unique_ptr<DeviceBackend>> MakeCudaDevice(int ordinal) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return NotFound("no usable CUDA GPU: " + CudaError("cudaGetDeviceCount", err));
  }
  if (ordinal < 0 || ordinal >= count)
    return NotFound("CUDA device " + std::to_string(ordinal) + " does not exist (" +
                    std::to_string(count) + " found)");
  cudaDeviceProp prop{};
  err = cudaGetDeviceProperties(&prop, ordinal);
  if (err != cudaSuccess) return NotFound(CudaError("cudaGetDeviceProperties", err));
  cudaSetDevice(ordinal);
  std::size_t free_bytes = 0, total_bytes = 0;
  err = cudaMemGetInfo(&free_bytes, &total_bytes);
  if (err != cudaSuccess) return NotFound(CudaError("cudaMemGetInfo", err));
  return std::unique_ptr<DeviceBackend>(std::make_unique<CudaDevice>(
      ordinal, "cuda:" + std::to_string(ordinal) + " " + prop.name, free_bytes));
}

}  // namespace residency::device
