// One HTTP/1.1 connection of HttpServer. For each request it reads the header
// alone, then decides from it: a reserve-only connection asking for anything
// but a reserve path, check_header's answer (a wrong token), a Content-Length
// over the body limit, or a body that would overflow the byte budget is
// answered at once and the body is never read. Otherwise the body is read
// under a deadline that grows with its length and the request is handled:
// reserve paths on the I/O thread, the rest on the request pool.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "harness/agent/byte_budget.h"
#include "harness/agent/connection_table.h"
#include "harness/agent/http_server.h"
#include "harness/agent/work_pool.h"

namespace residency::agent {

// What every connection of one server shares; outlives them all.
struct ServerShared {
  const ServerOptions& options;
  const HttpServer::Handler& handler;
  ConnectionTable& connections;
  ByteBudget& bodies;
  WorkPool& pool;
};

// Serves `socket` until it closes; `entry` is its row in shared.connections
// (closed when the connection ends).
void StartSession(boost::asio::ip::tcp::socket socket, ServerShared& shared, ConnectionTable::Entry entry);

}  // namespace residency::agent
