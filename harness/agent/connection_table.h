// Who is connected to the agent: open connections per client address and in
// all, which of them get full service, and which are waiting for a request
// header (those may be closed to make room for a newcomer).
//
// A connection gets full service while its client holds fewer than
// `per_client` connections and fewer than `max_connections` full-service
// connections are open in all. Any other connection is reserve-only: it may
// ask for /healthz and /metrics and nothing else. At `max_connections +
// reserve` open connections, a newcomer closes the one that has waited longest
// for a request header (a slow or idle client); with none waiting, the
// newcomer is refused. So an attacker who opens many connections and sends
// their headers slowly fills the reserve and then evicts their own
// connections, while health probes and scrapes still get in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

namespace residency::agent {

struct ConnectionLimits {
  std::size_t max_connections = 512;  // full service, all clients together
  std::size_t per_client = 32;        // full service, per client address
  std::size_t reserve = 512;          // more connections, /healthz and /metrics only
};

enum class Service { kFull, kReserveOnly, kRefused };

class ConnectionTable {
 public:
  explicit ConnectionTable(ConnectionLimits limits) : limits_(limits) {}

  struct Entry {
    std::uint64_t id = 0;
    Service service = Service::kRefused;
  };
  // A new connection from `client` (an address). Runs the evicted
  // connection's closer, if any, outside the lock.
  Entry Open(const std::string& client);
  // The connection is gone (call once per opened, non-refused entry).
  void Close(std::uint64_t id);
  // Waiting for a request header: `closer` (callable from any thread, at most
  // once) may be run to make room. Busy() takes it back.
  void Idle(std::uint64_t id, std::function<void()> closer);
  void Busy(std::uint64_t id);

  std::size_t open() const;
  std::size_t evicted() const;

 private:
  struct Conn {
    std::string client;
    bool full = false;
    bool idle = false;
    std::list<std::uint64_t>::iterator idle_pos;
    std::function<void()> closer;
  };
  ConnectionLimits limits_;
  mutable std::mutex mu_;
  std::unordered_map<std::uint64_t, Conn> conns_;
  std::unordered_map<std::string, std::size_t> per_client_;
  std::list<std::uint64_t> idle_;  // oldest first
  std::size_t full_ = 0;
  std::size_t evicted_ = 0;
  std::uint64_t next_id_ = 1;
};

}  // namespace residency::agent
