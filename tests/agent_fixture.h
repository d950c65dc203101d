// The agent in-process on a loopback port, for the agent's tests: a data
// directory of the test's own, a token for writes, and POST helpers.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "harness/agent/agent.h"
#include "tests/http_test_client.h"

namespace residency::testing {

inline const char* kToken = "s3cret-token";

inline std::filesystem::path TempDir(const std::string& tag) {
  namespace fs = std::filesystem;
  fs::path d = fs::temp_directory_path() /
               ("residency-agent-" + std::to_string(::getpid()) + "-" + tag + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

class AgentTest : public ::testing::Test {
 protected:
  using json = nlohmann::json;
  // A fresh data directory on the first start; the same one on a later start
  // (after Stop: an agent restarted on what the last one left).
  void Start(agent::AgentOptions ao = {}, agent::ServerOptions so = {}) {
    if (dir_.empty()) dir_ = TempDir("inproc");
    ao.data_dir = (dir_ / "data").string();
    if (ao.token.empty()) ao.token = kToken;
    auto a = agent::Agent::Open(ao);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    agent_ = std::move(*a);
    so.port = 0;
    so.timeout = std::chrono::milliseconds(500);
    so.body_limit = 1u << 20;
    auto s = agent::Serve(*agent_, so);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    port_ = server_->port();
  }
  void Stop() {
    if (server_) server_->Stop();
    if (agent_) agent_->Shutdown();
    server_.reset();
    agent_.reset();
  }
  void TearDown() override {
    Stop();
    std::filesystem::remove_all(dir_);
  }
  std::string PostTrace(const std::string& body) {
    Reply r = HttpCall(port_, "POST", "/v1/traces", body, kToken);
    EXPECT_TRUE(r.status == 201 || r.status == 200) << r.status << " " << r.body;
    return json::parse(r.body).value("id", "");
  }

  std::filesystem::path dir_;
  std::unique_ptr<agent::Agent> agent_;
  std::unique_ptr<agent::HttpServer> server_;
  std::uint16_t port_ = 0;
};

}  // namespace residency::testing
