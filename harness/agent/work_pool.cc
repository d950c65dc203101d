#include "harness/agent/work_pool.h"

#include <algorithm>
#include <utility>

namespace residency::agent {

WorkPool::WorkPool(int threads, std::size_t max_pending) : max_pending_(max_pending) {
  for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { Loop(); });
}

bool WorkPool::TrySubmit(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    if (stopped_ || pending_ >= max_pending_) return false;
    queue_.push_back(std::move(job));
    ++pending_;
  }
  cv_.notify_one();
  return true;
}

void WorkPool::Stop() {
  std::deque<std::function<void()>> dropped;  // destroyed outside the lock
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    dropped.swap(queue_);
    pending_ -= dropped.size();
  }
  cv_.notify_all();
  for (std::thread& t : threads_)
    if (t.joinable()) t.join();
}

std::size_t WorkPool::pending() const {
  std::lock_guard lock(mu_);
  return pending_;
}

void WorkPool::Loop() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopped_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopped
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();
    job = nullptr;
    std::lock_guard lock(mu_);
    --pending_;
  }
}

}  // namespace residency::agent
