// The HTTP agent driven over loopback: routes, auth, hostile input, a sweep
// end to end, promtool on /metrics, SIGKILL during ingestion and a graceful
// SIGTERM that leaves the rest of a sweep queued for the next start; clients
// that don't play fair (huge unauthenticated bodies, slow headers, too many
// connections, slow handlers) and sweeps that fail without lying or showing
// server paths.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "harness/agent/agent.h"
#include "harness/agent/client_message.h"
#include "harness/store/results_store.h"
#include "harness/store/sqlite_db.h"
#include "tests/agent_fixture.h"
#include "tests/http_test_client.h"
#include "traces/bundled.h"
#include "traces/json_fields.h"
#include "runtime/io/whole_file.h"

namespace residency {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::HttpCall;
using testing::HttpConnection;
using testing::RawConnection;
using testing::Reply;
using testing::StatusOf;
using testing::AgentTest;
using testing::kToken;
using testing::TempDir;


std::string ExampleTrace(const std::string& name) {
  auto text = io::ReadWholeFile(traces::DataDir() + "/examples/" + name + ".jsonl");
  EXPECT_TRUE(text.ok());
  return *text;
}

// The same trace with a different description: distinct content, valid.
std::string Variant(const std::string& trace, int n) {
  std::string out = trace;
  const std::string key = "\"description\": \"";
  const auto pos = out.find(key);
  out.insert(pos + key.size(), "variant " + std::to_string(n) + " ");
  return out;
}

json WaitForSweep(std::uint16_t port, std::int64_t id, const std::string& status, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  json last;
  while (std::chrono::steady_clock::now() < deadline) {
    Reply r = HttpCall(port, "GET", "/v1/sweeps/" + std::to_string(id));
    if (r.status == 200) {
      last = json::parse(r.body);
      if (last["status"] == status) return last;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "sweep " << id << " never reached '" << status << "': " << last.dump();
  return last;
}

TEST_F(AgentTest, HealthzAndRoutesAnswer) {
  Start();
  Reply h = HttpCall(port_, "GET", "/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(json::parse(h.body)["status"], "ok");
  EXPECT_EQ(HttpCall(port_, "GET", "/nope").status, 404);
  EXPECT_EQ(HttpCall(port_, "DELETE", "/v1/runs").status, 405);
  EXPECT_EQ(HttpCall(port_, "POST", "/healthz", "", kToken).status, 405);
  Reply runs = HttpCall(port_, "GET", "/v1/runs");
  EXPECT_EQ(runs.status, 200);
  EXPECT_EQ(runs.body, "[]\n");
  // Keep-alive: many requests on one connection.
  HttpConnection c(port_);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(c.Call("GET", "/healthz").status, 200) << i;
}

TEST_F(AgentTest, IngestsTracesDurablyAndByContent) {
  Start();
  const std::string body = ExampleTrace("sdxl-txt2img");
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/traces", body).status, 401);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/traces", body, "wrong").status, 401);
  Reply first = HttpCall(port_, "POST", "/v1/traces?name=my-sdxl", body, kToken);
  ASSERT_EQ(first.status, 201) << first.body;
  const std::string id = json::parse(first.body)["id"];
  EXPECT_EQ(id, store::ContentHash(body));
  Reply again = HttpCall(port_, "POST", "/v1/traces", body, kToken);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(json::parse(again.body)["id"], id);
  Reply got = HttpCall(port_, "GET", "/v1/traces/" + id);
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, body);
  Reply list = HttpCall(port_, "GET", "/v1/traces");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(json::parse(list.body).size(), 1u);
  EXPECT_EQ(json::parse(list.body)[0]["name"], "my-sdxl");
}

TEST_F(AgentTest, HostileRequestsGetA4xxAndTheAgentKeepsServing) {
  Start();
  const std::string trace = ExampleTrace("sdxl-txt2img");
  // Oversized body (the test limit is 1 MiB).
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/traces", std::string(2u << 20, 'x'), kToken).status, 413);
  // Malformed traces name the line.
  Reply bad = HttpCall(port_, "POST", "/v1/traces", trace + "{broken\n", kToken);
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("request body:"), std::string::npos) << bad.body;
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/traces", "", kToken).status, 400);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/traces?name=../../etc/passwd", trace, kToken).status, 400);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/traces?name=%zz", trace, kToken).status, 400);
  // Sweeps: malformed JSON, unknown fields, paths as profile names, unknown traces.
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/sweeps", "{", kToken).status, 400);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/sweeps", "[]", kToken).status, 400);
  const std::string id = PostTrace(trace);
  const auto sweep = [&](const std::string& profile, const std::string& trace_id) {
    return json{{"traces", {trace_id}}, {"profiles", {profile}}, {"policies", {"drop"}}}.dump();
  };
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/sweeps", sweep("../../../etc/passwd", id), kToken).status, 400);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/sweeps", sweep("/etc/passwd", id), kToken).status, 400);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/sweeps", sweep("rtx4090-64g.json", id), kToken).status, 400);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/sweeps", sweep("rtx4090-64g", "0123456789abcdef"), kToken).status, 404);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/sweeps", sweep("rtx4090-64g", "../x"), kToken).status, 400);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/sweeps", R"({"traces":[1],"profiles":["a"],"policies":["b"]})", kToken).status,
            400);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/sweeps", sweep("rtx4090-64g", id), "").status, 401);
  // Path tricks in ids.
  for (const char* target : {"/v1/traces/..%2F..%2Fetc%2Fpasswd", "/v1/traces/../../etc/passwd", "/v1/runs/1;DROP",
                             "/v1/runs/-1", "/v1/runs/99999999999999999999", "/v1/sweeps/%00", "/v1/runs?limit=-5"}) {
    const int status = HttpCall(port_, "GET", target).status;
    EXPECT_TRUE(status == 400 || status == 404) << target << " -> " << status;
  }
  // Not HTTP at all, and a client that stops mid-request.
  for (const std::string& raw : {std::string("HELLO THERE\r\n\r\n"), std::string("GET /healthz HTTP/1.1\r\nHost")}) {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::socket s(ioc);
    s.connect({boost::asio::ip::make_address("127.0.0.1"), port_});
    boost::asio::write(s, boost::asio::buffer(raw));
    const auto t0 = std::chrono::steady_clock::now();
    std::string got(4096, '\0');
    boost::system::error_code ec;
    const std::size_t n = boost::asio::read(s, boost::asio::buffer(got), ec);  // until the agent closes
    got.resize(n);
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (raw.rfind("HELLO", 0) == 0) {
      EXPECT_NE(got.find("400"), std::string::npos) << got;
    } else {
      EXPECT_TRUE(got.empty()) << got;
      EXPECT_GE(waited, 0.4);  // disconnected by the 0.5 s timeout, not earlier
      EXPECT_LT(waited, 5.0);
    }
  }
  EXPECT_EQ(HttpCall(port_, "GET", "/healthz").status, 200);
}

TEST_F(AgentTest, AFullQueueRefusesSweeps) {
  agent::AgentOptions ao;
  ao.queue_limit = 0;
  Start(ao);
  const std::string id = PostTrace(ExampleTrace("sdxl-txt2img"));
  Reply r = HttpCall(port_, "POST", "/v1/sweeps",
                     json{{"traces", {id}}, {"profiles", {"rtx4090-64g"}}, {"policies", {"drop"}}}.dump(), kToken);
  EXPECT_EQ(r.status, 503) << r.body;
}

// ---- Clients that don't play fair. ----

std::string Header(const std::string& request_line, const std::string& extra = "") {
  return request_line + "\r\nHost: agent\r\n" + extra + "\r\n";
}

TEST_F(AgentTest, RefusesAWriteOnItsHeaderBeforeReadingTheBody) {
  Start();
  const std::string auth = std::string("Authorization: Bearer ") + kToken + "\r\n";
  // 60 MB declared and none of it sent: no token, wrong token, a write route
  // that does not exist. Each is answered at once; waiting for the body
  // would run into the 0.5 s deadline and close without an answer.
  for (const std::string& extra : {std::string(""), std::string("Authorization: Bearer wrong\r\n")}) {
    RawConnection c(port_);
    ASSERT_TRUE(c.ok());
    const auto t0 = std::chrono::steady_clock::now();
    c.Send(Header("POST /v1/traces HTTP/1.1", extra + "Content-Length: 60000000\r\n"));
    const std::string got = c.Read(5.0, "\r\n\r\n");
    EXPECT_EQ(StatusOf(got), 401) << got;
    EXPECT_NE(got.find("WWW-Authenticate: Bearer"), std::string::npos) << got;
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 0.4);
  }
  {
    RawConnection c(port_);
    c.Send(Header("POST /v1/elsewhere HTTP/1.1", auth + "Content-Length: 60000000\r\n"));
    EXPECT_EQ(StatusOf(c.Read(5.0, "\r\n\r\n")), 404);
  }
  // Over the body limit (1 MiB here), with the token: 413, body unread.
  {
    RawConnection c(port_);
    c.Send(Header("POST /v1/traces HTTP/1.1", auth + "Content-Length: 2000000\r\n"));
    EXPECT_EQ(StatusOf(c.Read(5.0, "\r\n\r\n")), 413);
  }
  // A chunked body without a token: 401 as well.
  {
    RawConnection c(port_);
    c.Send(Header("POST /v1/sweeps HTTP/1.1", "Transfer-Encoding: chunked\r\n"));
    EXPECT_EQ(StatusOf(c.Read(5.0, "\r\n\r\n")), 401);
  }
  // "Expect: 100-continue": the body is asked for only once the header passed.
  {
    const std::string trace = ExampleTrace("sdxl-txt2img");
    RawConnection c(port_);
    c.Send(Header("POST /v1/traces HTTP/1.1",
                  auth + "Expect: 100-continue\r\nContent-Length: " + std::to_string(trace.size()) + "\r\n"));
    const std::string interim = c.Read(5.0, "\r\n\r\n");
    EXPECT_EQ(StatusOf(interim), 100) << interim;
    c.Send(trace);
    const std::string got = c.Read(5.0, "}\n");
    EXPECT_NE(got.find("HTTP/1.1 201"), std::string::npos) << got;
  }
  // The agent counted the refusals and is still fine.
  const std::string m = HttpCall(port_, "GET", "/metrics").body;
  std::istringstream lines(m);
  bool counted = false;
  for (std::string line; std::getline(lines, line);) {
    counted = counted || (line.rfind("residency_http_requests_total{", 0) == 0 &&
                          line.find("code=\"401\"") != std::string::npos &&
                          line.find("route=\"/v1/traces\"") != std::string::npos && line.substr(line.rfind(' ')) == " 2");
  }
  EXPECT_TRUE(counted) << m;
  EXPECT_EQ(HttpCall(port_, "GET", "/healthz").status, 200);
}

TEST_F(AgentTest, BodiesInFlightStayWithinTheByteBudget) {
  agent::ServerOptions so;
  so.body_memory = 1500000;      // room for one 900 KB body, not two
  so.body_min_rate = 100000;     // 900 KB may take 9 s
  Start({}, so);
  const std::string auth = std::string("Authorization: Bearer ") + kToken + "\r\n";
  const std::string big = Header("POST /v1/traces HTTP/1.1", auth + "Content-Length: 900000\r\n");
  auto holder = std::make_unique<RawConnection>(port_);
  holder->Send(big);
  holder->Send(std::string(1000, '{'));  // and then nothing: it holds its claim
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  {
    RawConnection second(port_);
    second.Send(big);
    const std::string got = second.Read(5.0, "\r\n\r\n");
    EXPECT_EQ(StatusOf(got), 503) << got;
    EXPECT_NE(got.find("Retry-After: "), std::string::npos) << got;
  }
  // What fits in the rest of the budget is served.
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/traces", ExampleTrace("sdxl-txt2img"), kToken).status, 201);
  EXPECT_EQ(HttpCall(port_, "GET", "/healthz").status, 200);
  // The holder's body never comes: its deadline (9 s) is far; closing it
  // gives its claim back and the next big body is read.
  holder.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  RawConnection third(port_);
  third.Send(big);
  EXPECT_EQ(third.Read(0.3), "");  // waiting for the body, not refused
  third.Send(std::string(900000, 'x'));
  EXPECT_EQ(StatusOf(third.Read(5.0, "\r\n\r\n")), 400);  // read and judged: not a trace
}

TEST_F(AgentTest, TooManyConnectionsFromOneAddressGetOnlyHealthAndMetrics) {
  agent::ServerOptions so;
  so.max_connections_per_client = 4;
  Start({}, so);
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<RawConnection>(port_, "127.0.0.3"));
    ASSERT_TRUE(held.back()->ok()) << "cannot connect from 127.0.0.3";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto ask = [&](const char* from, const std::string& target) {
    RawConnection c(port_, from);
    c.Send(Header("GET " + target + " HTTP/1.1", "Connection: close\r\n"));
    return c.Read(5.0);
  };
  const std::string over = ask("127.0.0.3", "/v1/runs");
  EXPECT_EQ(StatusOf(over), 503) << over;
  EXPECT_NE(over.find("Retry-After: "), std::string::npos) << over;
  EXPECT_EQ(StatusOf(ask("127.0.0.3", "/healthz")), 200);
  EXPECT_EQ(StatusOf(ask("127.0.0.3", "/metrics")), 200);
  EXPECT_EQ(StatusOf(ask("127.0.0.1", "/v1/runs")), 200);  // another client is served in full
}

TEST_F(AgentTest, SlowHeadersAreCutOffAndHealthChecksStillAnswer) {
  agent::ServerOptions so;
  so.max_connections = 8;
  so.max_connections_per_client = 4;
  so.reserve_connections = 8;
  Start({}, so);
  // 60 connections from another address send a header a line at a time
  // (slowloris): more than the 16 connections allowed in all.
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 60; ++i) {
    slow.push_back(std::make_unique<RawConnection>(port_, "127.0.0.2"));
    slow.back()->Send("GET /v1/runs HTTP/1.1\r\nHost: agent\r\n");
  }
  std::atomic<bool> stop{false};
  std::thread trickle([&] {
    while (!stop) {
      for (auto& c : slow) c->Send("X-Slow: 1\r\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  int healthy = 0, scraped = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    healthy += HttpCall(port_, "GET", "/healthz").status == 200;
    scraped += HttpCall(port_, "GET", "/metrics").status == 200;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double probing = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Every slow connection ends: evicted for a newcomer or cut at the 0.5 s
  // header deadline, although it never stops sending.
  int closed = 0;
  for (auto& c : slow) {
    c->Read(2.0);
    closed += c->closed();
  }
  stop = true;
  trickle.join();
  EXPECT_EQ(healthy, 20);
  EXPECT_EQ(scraped, 20);
  EXPECT_LT(probing, 10.0);
  EXPECT_EQ(closed, 60);
  EXPECT_GT(server_->evicted_connections(), 0u);
  EXPECT_EQ(HttpCall(port_, "GET", "/v1/runs").status, 200);
}

// A store failure in the middle of a sweep: the status counts the runs that
// were stored and its message names no server path.
TEST_F(AgentTest, AFailedSweepCountsTheRunsItStoredAndShowsNoServerPath) {
  Start();
  const std::string id = PostTrace(ExampleTrace("sdxl-txt2img"));
  {
    auto db = store::Database::Open((dir_ / "data" / "results.db").string());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    ASSERT_TRUE(db->Exec("CREATE TRIGGER third_run_fails BEFORE INSERT ON runs "
                         "WHEN (SELECT count(*) FROM runs) >= 2 BEGIN SELECT RAISE(ABORT, 'injected failure'); END;")
                    .ok());
  }
  Reply q = HttpCall(port_, "POST", "/v1/sweeps",
                     json{{"traces", {id}}, {"profiles", {"rtx4090-64g", "rtx5060-16g"}}, {"policies", {"drop", "ram-lru"}}}
                         .dump(),
                     kToken);
  ASSERT_EQ(q.status, 202) << q.body;
  const json failed = WaitForSweep(port_, json::parse(q.body)["id"], "failed", 60);
  const json runs = json::parse(HttpCall(port_, "GET", "/v1/runs").body);
  EXPECT_EQ(runs.size(), 2u);
  EXPECT_EQ(failed["runs_done"], 2) << failed.dump();
  EXPECT_EQ(failed["runs_total"], 4);
  const std::string message = failed["message"];
  EXPECT_NE(message.find("injected failure"), std::string::npos) << message;
  EXPECT_EQ(message.find(dir_.string()), std::string::npos) << message;
  EXPECT_EQ(message.find(fs::temp_directory_path().string() + "/"), std::string::npos) << message;
}

// Prompt ids that repeat (1, 2, 1, 2). Whatever the rule (refused at upload
// with the line, or stored and run), the agent never reports a sweep that
// disagrees with the runs it stored, nor a server path.
TEST_F(AgentTest, ATraceWithRepeatedPromptIdsNeverLeavesAnUntruthfulSweep) {
  Start();
  std::string trace = ExampleTrace("sdxl-txt2img");
  for (const auto& [from, to] : {std::pair{"\"prompt\": 3}", "\"prompt\": 1}"}, {"\"prompt\": 4}", "\"prompt\": 2}"}}) {
    for (auto pos = trace.find(from); pos != std::string::npos; pos = trace.find(from, pos)) trace.replace(pos, 12, to);
  }
  Reply up = HttpCall(port_, "POST", "/v1/traces", trace, kToken);
  EXPECT_EQ(up.body.find(dir_.string()), std::string::npos) << up.body;
  if (up.status == 400) {
    EXPECT_NE(up.body.find("request body:"), std::string::npos) << up.body;
    return;
  }
  ASSERT_EQ(up.status, 201) << up.body;
  Reply q = HttpCall(port_, "POST", "/v1/sweeps",
                     json{{"traces", {json::parse(up.body)["id"]}},
                          {"profiles", {"rtx4090-64g", "rtx5060-16g", "sandbox-2c-24g"}},
                          {"policies", {"drop", "ram-lru"}}}
                         .dump(),
                     kToken);
  ASSERT_EQ(q.status, 202) << q.body;
  const std::int64_t sweep = json::parse(q.body)["id"];
  json s;
  for (int i = 0; i < 3000; ++i) {
    s = json::parse(HttpCall(port_, "GET", "/v1/sweeps/" + std::to_string(sweep)).body);
    if (s["status"] == "done" || s["status"] == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(s["status"] == "done" || s["status"] == "failed") << s.dump();
  const json runs = json::parse(HttpCall(port_, "GET", "/v1/runs").body);
  EXPECT_EQ(s["runs_done"], runs.size()) << s.dump();
  if (s["status"] == "done") {
    EXPECT_EQ(s["runs_done"], s["runs_total"]);
  }
  const std::string message = s["message"];
  EXPECT_EQ(message.find(dir_.string()), std::string::npos) << message;
  EXPECT_EQ(message.find(fs::temp_directory_path().string() + "/"), std::string::npos) << message;
}

TEST(AgentClientMessage, ServerPathsAreCutToTheirLastComponent) {
  const std::vector<std::string> mine = {"residency-data", "residency-data/results.db", "/srv/residency/traces"};
  EXPECT_EQ(agent::WithoutServerPaths("residency-data/results.db: INSERT INTO prompts(run_id): UNIQUE constraint "
                                      "failed",
                                      mine),
            "results.db: INSERT INTO prompts(run_id): UNIQUE constraint failed");
  EXPECT_EQ(agent::WithoutServerPaths(fs::absolute("residency-data/results.db").string() + ": disk I/O error", mine),
            "results.db: disk I/O error");
  EXPECT_EQ(agent::WithoutServerPaths("/srv/residency/traces/profiles/rtx4090-64g.json:3: bad 'vram'", mine),
            "rtx4090-64g.json:3: bad 'vram'");
  EXPECT_EQ(agent::WithoutServerPaths("cannot open '/home/ops/secret dir/x.db' (/var/lib/a/b)", mine),
            "cannot open 'x.db' (b)");
  EXPECT_EQ(agent::WithoutServerPaths("trace 0123456789abcdef is gone; 3/4 runs", mine),
            "trace 0123456789abcdef is gone; 3/4 runs");
}

// ---- The HTTP server alone: slow handlers run on a bounded pool. ----

TEST(AgentServerTest, SlowHandlersRunOnABoundedPoolAndHealthzStillAnswers) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> entered{0};
  agent::ServerOptions so;
  so.port = 0;
  so.threads = 2;
  so.request_threads = 2;
  so.request_queue = 3;
  auto server = agent::HttpServer::Start(so, [&](const agent::HttpRequest& r) {
    if (r.target != "/healthz") {
      ++entered;
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return release; });
    }
    return agent::HttpResponse{200, "application/json", "{}\n", "test", ""};
  });
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const std::uint16_t port = (*server)->port();
  struct Release {  // whatever happens below, the blocked handlers end
    std::mutex& mu;
    std::condition_variable& cv;
    bool& release;
    ~Release() {
      {
        std::lock_guard lock(mu);
        release = true;
      }
      cv.notify_all();
    }
  };
  std::vector<int> slow_status(3, 0);
  std::vector<std::thread> slow;
  {
    Release guard{mu, cv, release};
    for (int i = 0; i < 3; ++i) slow.emplace_back([&, i] { slow_status[i] = HttpCall(port, "POST", "/slow", "x").status; });
    for (int i = 0; i < 500 && entered < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the third is queued
    EXPECT_EQ(entered, 2);  // two threads, however many requests
    // The backlog (2 running + 1 queued) is full: refused at once.
    RawConnection over(port);
    over.Send(Header("GET /also-slow HTTP/1.1"));
    const std::string got = over.Read(2.0, "}\n");
    EXPECT_EQ(StatusOf(got), 503) << got;
    EXPECT_NE(got.find("Retry-After: "), std::string::npos) << got;
    // Health checks run on the I/O threads: they answer meanwhile.
    for (int i = 0; i < 10; ++i) {
      RawConnection h(port);
      h.Send(Header("GET /healthz HTTP/1.1"));
      EXPECT_EQ(StatusOf(h.Read(2.0, "{}\n")), 200) << i;
    }
  }
  for (std::thread& t : slow) t.join();
  EXPECT_EQ(slow_status, std::vector<int>(3, 200));
  (*server)->Stop();
}

bool HasSample(const std::string& metrics, const std::string& prefix) {
  std::size_t pos = 0;
  while ((pos = metrics.find(prefix, pos)) != std::string::npos) {
    if (pos == 0 || metrics[pos - 1] == '\n') {
      const auto eol = metrics.find('\n', pos);
      const std::string line = metrics.substr(pos, eol - pos);
      const double v = std::stod(line.substr(line.rfind(' ') + 1));
      if (v > 0) return true;
    }
    ++pos;
  }
  return false;
}

TEST_F(AgentTest, CountsCapturedTracesByHost) {
  Start();
  auto captured = io::ReadWholeFile(std::string(RESIDENCY_TEST_DATA_DIR) + "/captured-tiny.jsonl");
  ASSERT_TRUE(captured.ok());
  PostTrace(ExampleTrace("sdxl-txt2img"));  // synthesized: not a capture
  PostTrace(*captured);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/traces", *captured, kToken).status, 200);  // a resend counts once
  const std::string m = HttpCall(port_, "GET", "/metrics").body;
  EXPECT_NE(m.find("residency_captured_traces_total{host=\"bench-7\"} 1\n"), std::string::npos) << m;
  EXPECT_EQ(m.find("residency_captured_traces_total{host=\"unknown\"}"), std::string::npos);
}

TEST_F(AgentTest, SweepRunsEndToEndAndMetricsPassPromtool) {
  Start();
  const std::string a = PostTrace(ExampleTrace("sdxl-txt2img"));
  const std::string b = PostTrace(ExampleTrace("chroma-6lora"));
  Reply q = HttpCall(port_, "POST", "/v1/sweeps",
                     json{{"traces", {a, b}},
                          {"profiles", {"rtx4090-64g", "rtx5060-16g"}},
                          {"policies", {"drop", "ram-lru"}},
                          {"seeds", {1}}}
                         .dump(),
                     kToken);
  ASSERT_EQ(q.status, 202) << q.body;
  const json done = WaitForSweep(port_, json::parse(q.body)["id"], "done", 60);
  EXPECT_EQ(done["runs_done"], 8);
  Reply runs = HttpCall(port_, "GET", "/v1/runs?profile=rtx4090-64g");
  ASSERT_EQ(runs.status, 200);
  const json rj = json::parse(runs.body);
  ASSERT_EQ(rj.size(), 4u);
  for (const json& r : rj) EXPECT_EQ(r["profile"], "rtx4090-64g");
  Reply one = HttpCall(port_, "GET", "/v1/runs/" + std::to_string(rj[0]["id"].get<int>()));
  ASSERT_EQ(one.status, 200);
  EXPECT_GT(json::parse(one.body)["result"]["makespan_ns"].get<std::int64_t>(), 0);
  EXPECT_EQ(HttpCall(port_, "GET", "/v1/runs/99999").status, 404);

  const std::string metrics = HttpCall(port_, "GET", "/metrics").body;
  for (const char* name : {"residency_runs_total{", "residency_load_bytes_total{", "residency_load_seconds_total{",
                           "residency_memory_peak_bytes{", "residency_memory_budget_bytes{",
                           "residency_simulated_events_total{", "residency_http_requests_total{",
                           "residency_traces_ingested_bytes_total", "residency_sweeps_total{"}) {
    EXPECT_TRUE(HasSample(metrics, name)) << name << " missing or zero in\n" << metrics.substr(0, 2000);
  }
  EXPECT_NE(metrics.find("residency_http_request_duration_seconds_bucket{"), std::string::npos);
  if (system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool not installed (Debian package 'prometheus'): metrics format not checked";
  }
  const fs::path file = dir_ / "metrics.txt";
  { std::ofstream(file) << metrics; }
  const std::string cmd = "promtool check metrics < " + file.string() + " > " + (dir_ / "promtool.log").string() + " 2>&1";
  const int rc = system(cmd.c_str());
  std::ifstream log(dir_ / "promtool.log");
  const std::string out((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << "promtool check metrics:\n" << out;
}

// Every series prometheus-cpp's own serializer writes, ours writes with the
// same value (ours is faster; see harness/metrics/exposition.h).
std::map<std::string, double> ParseExposition(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.rfind(' ');
    std::string series = line.substr(0, sp);
    // Normalize le="0.5" vs le="0.500000" style differences.
    const auto le = series.find(",le=\"");  // ("profile=" ends in "le=" too)
    if (le != std::string::npos) {
      const auto end = series.find('"', le + 5);
      const std::string v = series.substr(le + 5, end - le - 5);
      const std::string norm = v == "+Inf" ? v : std::to_string(std::stod(v));
      series = series.substr(0, le + 5) + norm + series.substr(end);
    }
    out[series] = std::stod(line.substr(sp + 1));
  }
  return out;
}

// A finished run under ram-lru on `profile`; each test adds its figures.
metrics::RunSample OkRun(const std::string& profile) {
  metrics::RunSample s;
  s.profile = profile;
  s.policy = "ram-lru";
  s.outcome = "ok";
  return s;
}

TEST(Exposition, SameSeriesAndValuesAsPrometheusCpp) {
  metrics::Metrics m;
  metrics::RunSample s = OkRun("box \"quoted\"\nnewline\\");
  s.disk_read_bytes = 6940000000;
  s.load_seconds = 1.25;
  s.evictions["device/pressure"] = {3, 12345};
  m.RecordRun(s);
  m.RecordHttp("/metrics", 200, 0.0042);
  m.RecordHttp("/metrics", 200, 3.5);
  const std::string ours = m.Serialize();
  const std::string theirs = m.SerializeWithPrometheusCpp();
  const auto a = ParseExposition(ours), b = ParseExposition(theirs);
  EXPECT_EQ(a.size(), b.size());
  for (const auto& [series, value] : b) {
    ASSERT_TRUE(a.count(series)) << series << " missing from\n" << ours;
    EXPECT_DOUBLE_EQ(a.at(series), value) << series;
  }
}

// The peak gauge holds the last run's value: without a trace label, a
// small trace run after a big one hid the big one's peak.
TEST(Exposition, EachTraceKeepsItsOwnPeakAndTheTraceLabelsAreBounded) {
  metrics::Metrics m;
  metrics::RunSample s = OkRun("rtx5060-16g");
  s.trace = "wan22-14b-t2v";
  s.peak_device_bytes = 7'000'000'000;
  m.RecordRun(s);
  s.trace = "sdxl-txt2img";
  s.peak_device_bytes = 7'000'000;
  m.RecordRun(s);
  const auto series = ParseExposition(m.Serialize());
  const std::string prefix = "residency_memory_peak_bytes{policy=\"ram-lru\",profile=\"rtx5060-16g\",source=\"sim\",";
  ASSERT_TRUE(series.count(prefix + "tier=\"device\",trace=\"wan22-14b-t2v\"}")) << m.Serialize();
  EXPECT_EQ(series.at(prefix + "tier=\"device\",trace=\"wan22-14b-t2v\"}"), 7e9);
  EXPECT_EQ(series.at(prefix + "tier=\"device\",trace=\"sdxl-txt2img\"}"), 7e6);
  // Names come from inputs: 256 distinct values at most, then "other".
  for (int i = 0; i < 300; ++i) {
    s.trace = "t" + std::to_string(i) + " <x>";
    m.RecordRun(s);
  }
  std::set<std::string> traces;
  for (const auto& [name, value] : ParseExposition(m.Serialize())) {
    const auto at = name.find("trace=\"");
    if (name.rfind("residency_memory_peak_bytes{", 0) == 0 && at != std::string::npos)
      traces.insert(name.substr(at + 7, name.find('"', at + 7) - at - 7));
  }
  EXPECT_EQ(traces.size(), 257u);
  EXPECT_TRUE(traces.count("other"));
  EXPECT_TRUE(traces.count("t0__x_")) << "label values are made printable";
}

// ---- The agent as a separate process: SIGKILL and SIGTERM. ----

class AgentProcess {
 public:
  AgentProcess(const fs::path& dir, const std::vector<std::string>& extra = {}) : dir_(dir) {
    const fs::path port_file = dir / "port";
    fs::remove(port_file);
    std::vector<std::string> args = {RESIDENCY_BIN, "serve", "--listen", "127.0.0.1:0", "--data",
                                     (dir / "data").string(), "--port-file", port_file.string(),
                                     "--token-file", (dir / "token").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    { std::ofstream(dir / "token") << kToken << "\n"; }
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open((dir / "agent.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    for (int i = 0; i < 1000 && port_ == 0; ++i) {
      std::ifstream in(port_file);
      int p = 0;
      if (in >> p) port_ = static_cast<std::uint16_t>(p);
      else std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~AgentProcess() {
    if (pid_ > 0) Kill(SIGKILL);
  }
  std::uint16_t port() const { return port_; }
  int Kill(int sig) {
    Signal(sig);
    return Wait();
  }
  void Signal(int sig) { ::kill(pid_, sig); }
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

TEST(AgentProcessTest, EveryAcknowledgedTraceSurvivesSigkillDuringIngestion) {
  const fs::path dir = TempDir("crash");
  const std::string base = ExampleTrace("sdxl-txt2img");
  std::map<std::string, std::string> acked;  // id -> body
  std::mutex mu;
  {
    AgentProcess agent(dir);
    ASSERT_NE(agent.port(), 0) << "agent did not start; see " << (dir / "agent.log");
    std::atomic<bool> stop{false};
    std::atomic<int> next{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < 3; ++c) {
      clients.emplace_back([&] {
        HttpConnection conn(agent.port());
        while (!stop) {
          const std::string body = Variant(base, next++);
          Reply r = conn.Call("POST", "/v1/traces", body, kToken);
          if (r.status == 201 || r.status == 200) {
            std::lock_guard lock(mu);
            acked[json::parse(r.body)["id"]] = body;
          } else if (!conn.ok()) {
            return;  // the agent died under us
          }
        }
      });
    }
    // Kill it mid-stream, once some traces are in.
    for (int i = 0; i < 500; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      std::lock_guard lock(mu);
      if (acked.size() >= 100) break;
    }
    const int status = agent.Kill(SIGKILL);
    EXPECT_TRUE(WIFSIGNALED(status));
    stop = true;
    for (std::thread& t : clients) t.join();
  }
  ASSERT_GE(acked.size(), 10u);
  AgentProcess again(dir);
  ASSERT_NE(again.port(), 0);
  for (const auto& [id, body] : acked) {
    Reply r = HttpCall(again.port(), "GET", "/v1/traces/" + id);
    ASSERT_EQ(r.status, 200) << "acknowledged trace " << id << " lost";
    EXPECT_EQ(r.body, body) << "acknowledged trace " << id << " changed";
  }
  // Nothing half-written is visible: every stored trace is whole and valid.
  const json list = json::parse(HttpCall(again.port(), "GET", "/v1/traces").body);
  EXPECT_GE(list.size(), acked.size());
  for (const json& t : list) {
    Reply r = HttpCall(again.port(), "GET", "/v1/traces/" + t["id"].get<std::string>());
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(store::ContentHash(r.body), t["id"].get<std::string>());
    EXPECT_EQ(HttpCall(again.port(), "POST", "/v1/traces", r.body, kToken).status, 200);  // parses, already there
  }
  again.Kill(SIGTERM);
  fs::remove_all(dir);
}

TEST(AgentProcessTest, SigtermLeavesTheRestOfASweepQueuedAndARestartFinishesIt) {
  const fs::path dir = TempDir("drain");
  std::int64_t total = 0;
  {
    AgentProcess agent(dir);
    ASSERT_NE(agent.port(), 0);
    Reply t = HttpCall(agent.port(), "POST", "/v1/traces", ExampleTrace("sdxl-txt2img"), kToken);
    ASSERT_EQ(t.status, 201);
    std::vector<int> seeds;
    for (int s = 1; s <= 40; ++s) seeds.push_back(s);
    Reply q = HttpCall(agent.port(), "POST", "/v1/sweeps",
                       json{{"traces", {json::parse(t.body)["id"]}},
                            {"profiles", {"rtx4090-64g", "rtx5090-96g"}},
                            {"policies", {"drop", "ram-lru"}},
                            {"seeds", seeds}}
                           .dump(),
                       kToken);
    ASSERT_EQ(q.status, 202) << q.body;
    total = json::parse(q.body)["runs"];
    WaitForSweep(agent.port(), 1, "running", 30);
    const int status = agent.Kill(SIGTERM);
    ASSERT_TRUE(WIFEXITED(status)) << "SIGTERM should end the agent cleanly";
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  {
    auto s = store::ResultsStore::Open((dir / "data" / "results.db").string());
    ASSERT_TRUE(s.ok());
    auto row = (*s)->GetSweep(1);
    ASSERT_TRUE(row.ok() && row->has_value());
    if ((*row)->status == "done") {
      GTEST_SKIP() << "the sweep finished before SIGTERM arrived; nothing to resume";
    }
    EXPECT_EQ((*row)->status, "queued") << (*row)->message;
    EXPECT_LT(*(*s)->CountRuns(), total);
  }
  AgentProcess again(dir);
  ASSERT_NE(again.port(), 0);
  const json done = WaitForSweep(again.port(), 1, "done", 600);
  EXPECT_EQ(done["runs_done"], total);
  const json runs = json::parse(HttpCall(again.port(), "GET", "/v1/runs?limit=10000").body);
  EXPECT_EQ(static_cast<std::int64_t>(runs.size()), total);
  again.Kill(SIGTERM);
  fs::remove_all(dir);
}

// After SIGTERM the listener stays open through the drain: /healthz answers
// 503 "draining" (a probe sees why), /metrics still answers, writes get 503.
TEST(AgentProcessTest, HealthzAnswersDrainingDuringTheDrain) {
  const fs::path dir = TempDir("draining");
  AgentProcess agent(dir, {"--drain-grace", "3"});
  ASSERT_NE(agent.port(), 0) << "agent did not start; see " << (dir / "agent.log");
  ASSERT_EQ(HttpCall(agent.port(), "GET", "/healthz").status, 200);
  const auto t0 = std::chrono::steady_clock::now();
  agent.Signal(SIGTERM);
  Reply h;
  for (int i = 0; i < 100; ++i) {
    h = HttpCall(agent.port(), "GET", "/healthz");
    if (h.status == 503) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(h.status, 503) << h.error;
  if (h.status == 503) {
    EXPECT_EQ(json::parse(h.body)["status"], "draining");
  }
  EXPECT_EQ(HttpCall(agent.port(), "GET", "/metrics").status, 200);
  EXPECT_EQ(HttpCall(agent.port(), "POST", "/v1/traces", ExampleTrace("sdxl-txt2img"), kToken).status, 503);
  const int status = agent.Wait();
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_GE(took, 2.5);  // the grace
  EXPECT_EQ(HttpCall(agent.port(), "GET", "/healthz").status, 0);  // closed once it is over
  fs::remove_all(dir);
}

}  // namespace
}  // namespace residency
