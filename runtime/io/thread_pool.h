// A fixed set of worker threads draining one FIFO of tasks. The destructor
// finishes queued tasks, then joins.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace residency::io {

// This machine's cores as the OS reports them (at least 1): the pool size for
// CPU-bound work such as prefaulting.
inline int CoreCount() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Post(std::function<void()> task);
  int size() const { return static_cast<int>(workers_.size()); }

 private:
  void Work();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

// Counts down outstanding tasks; Wait() returns the first error any reported.
class TaskGroup {
 public:
  void Add(int n = 1);
  void Done(bool ok, const std::string& error = {});
  // Blocks until every added task is done; the first error, or "" if none.
  std::string Wait();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int outstanding_ = 0;
  std::string error_;
};

}  // namespace residency::io
