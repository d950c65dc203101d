// libFuzzer target: any bytes as a gate file (`serve --gate`), and as the
// memory flags of a captured server (the captured policy's flag parser).
// Errors are values naming the origin; whatever is derived is a valid policy.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "harness/gate/gate_config.h"
#include "traces/captured_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace residency;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto gate = gate::ParseGateConfig(text, "fuzz-gate.json");
  if (!gate.ok() && gate.status().message().rfind("fuzz-gate.json", 0) != 0) __builtin_trap();
  // The first line is the server version, the rest its flags, split at spaces.
  traces::MachineRecord m;
  std::istringstream in(text);
  std::getline(in, m.server);
  m.device = m.server.size() % 2 ? "NVIDIA GeForce RTX 4090" : "cpu";
  m.torch = "2.9.0";
  m.ram = engine::Bytes{64} << 30;
  m.vram = engine::Bytes{24} << 30;
  for (std::string token; in >> token && m.flags.size() < 64;) m.flags.push_back(token);
  auto derived = traces::PolicyFromMachine(m, "", {m.flags.empty() ? std::string("!--cpu") : m.flags.back()});
  if (derived.ok() && !engine::ValidatePolicy(derived->policy).ok()) __builtin_trap();
  return 0;
}
