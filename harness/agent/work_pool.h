// A fixed set of threads with a bounded backlog, for the agent's requests
// that may take a while (validating an upload, querying the store), so the
// I/O threads stay free for /healthz, /metrics and the network. A job offered
// while `max_pending` jobs are queued or running is refused, not queued.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace residency::agent {

class WorkPool {
 public:
  WorkPool(int threads, std::size_t max_pending);
  ~WorkPool() { Stop(); }
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // False (and `job` is dropped) when the backlog is full or the pool stopped.
  bool TrySubmit(std::function<void()> job);
  // Takes no more work, drops the jobs not started and waits for the running
  // ones. Idempotent.
  void Stop();
  std::size_t pending() const;

 private:
  void Loop();
  const std::size_t max_pending_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::size_t pending_ = 0;  // queued + running
  bool stopped_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace residency::agent
