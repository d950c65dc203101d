#include "harness/agent/connection_table.h"

#include <utility>

namespace residency::agent {

ConnectionTable::Entry ConnectionTable::Open(const std::string& client) {
  std::function<void()> victim;
  Entry entry;
  {
    std::lock_guard lock(mu_);
    if (conns_.size() >= limits_.max_connections + limits_.reserve) {
      if (idle_.empty()) return entry;  // kRefused
      Conn& oldest = conns_.at(idle_.front());
      idle_.pop_front();
      oldest.idle = false;
      victim = std::move(oldest.closer);
      oldest.closer = nullptr;
      ++evicted_;
      // The victim stays counted until it closes; the newcomer is let in now.
    }
    std::size_t& from_client = per_client_[client];
    const bool full = from_client < limits_.per_client && full_ < limits_.max_connections;
    ++from_client;
    if (full) ++full_;
    entry.id = next_id_++;
    entry.service = full ? Service::kFull : Service::kReserveOnly;
    Conn c;
    c.client = client;
    c.full = full;
    conns_.emplace(entry.id, std::move(c));
  }
  if (victim) victim();
  return entry;
}

void ConnectionTable::Close(std::uint64_t id) {
  std::function<void()> closer;  // destroyed outside the lock
  std::lock_guard lock(mu_);
  const auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  if (c.idle) idle_.erase(c.idle_pos);
  closer = std::move(c.closer);
  if (c.full) --full_;
  const auto pc = per_client_.find(c.client);
  if (pc != per_client_.end() && --pc->second == 0) per_client_.erase(pc);
  conns_.erase(it);
}

void ConnectionTable::Idle(std::uint64_t id, std::function<void()> closer) {
  std::lock_guard lock(mu_);
  const auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  if (c.idle) idle_.erase(c.idle_pos);
  c.idle = true;
  c.idle_pos = idle_.insert(idle_.end(), id);
  c.closer = std::move(closer);
}

void ConnectionTable::Busy(std::uint64_t id) {
  std::function<void()> closer;  // destroyed outside the lock
  std::lock_guard lock(mu_);
  const auto it = conns_.find(id);
  if (it == conns_.end() || !it->second.idle) return;
  idle_.erase(it->second.idle_pos);
  it->second.idle = false;
  closer = std::move(it->second.closer);
  it->second.closer = nullptr;
}

std::size_t ConnectionTable::open() const {
  std::lock_guard lock(mu_);
  return conns_.size();
}

std::size_t ConnectionTable::evicted() const {
  std::lock_guard lock(mu_);
  return evicted_;
}

}  // namespace residency::agent
