#include "runtime/io/mapped_copy.h"

#include <setjmp.h>
#include <signal.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "runtime/base/input_text.h"

namespace residency::io {
namespace {

// The copy in progress on this thread, if any: a SIGBUS there jumps back.
// volatile: the handler reads it in the middle of a memcpy, which the compiler
// cannot see, so the stores around the copy must not be elided or moved.
thread_local sigjmp_buf* volatile active_copy = nullptr;
struct sigaction previous_bus {};

void OnSigbus(int sig, siginfo_t* info, void* context) {
  if (active_copy != nullptr) siglongjmp(*active_copy, 1);
  // Not ours: whatever handled SIGBUS before us (or the default) does.
  if (previous_bus.sa_flags & SA_SIGINFO) {
    if (previous_bus.sa_sigaction) return previous_bus.sa_sigaction(sig, info, context);
  } else if (previous_bus.sa_handler != SIG_IGN && previous_bus.sa_handler != SIG_DFL && previous_bus.sa_handler) {
    return previous_bus.sa_handler(sig);
  }
  signal(SIGBUS, SIG_DFL);
  raise(SIGBUS);
}

void InstallOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = OnSigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &previous_bus);
  });
}

// Runs `access` (plain memory reads, nothing to unwind) with SIGBUS turned
// into an error: a jump out of a memcpy or a byte loop skips no destructor.
template <typename Access>
Status Guarded(const std::string& path, Access access) {
  InstallOnce();
  sigjmp_buf here;
  if (sigsetjmp(here, 1) != 0) {
    active_copy = nullptr;
    return DataLoss(Printable(path) + ": the file shrank while it was mapped and read (SIGBUS on a page past its new end)");
  }
  active_copy = &here;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  access();
  std::atomic_signal_fence(std::memory_order_seq_cst);
  active_copy = nullptr;
  return Status::Ok();
}

}  // namespace

Status CopyFromMapping(void* dst, const void* src, std::size_t n, const std::string& path) {
  return Guarded(path, [&] { std::memcpy(dst, src, n); });
}

Status TouchMapping(const char* p, std::size_t n, std::size_t stride, const std::string& path) {
  return Guarded(path, [&] {
    volatile char sink = 0;
    for (std::size_t at = 0; at < n; at += stride) sink = sink + p[at];
  });
}

}  // namespace residency::io
