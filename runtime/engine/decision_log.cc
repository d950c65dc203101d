#include "runtime/engine/decision_log.h"

namespace residency::engine {

std::string DecisionLine(const Notice& n) {
  std::string line = "notice ";
  line += ToString(n.kind);
  line += " model=" + std::to_string(n.model);
  line += " tier=";
  line += ToString(n.tier);
  if (n.kind == NoticeKind::kEvicted) {
    line += " reason=";
    line += ToString(n.reason);
  }
  line += " bytes=" + std::to_string(n.bytes);
  return line;
}

std::string DecisionLine(const OpResult& r) {
  std::string line = "op " + std::to_string(r.op) + " ";
  line += ToString(r.kind);
  line += " ";
  line += r.status.ok() ? "ok" : ToString(r.status.code());
  return line;
}

void AppendDecisions(const Outbox& out, std::vector<std::string>& log) {
  for (const Notice& n : out.notices) log.push_back(DecisionLine(n));
  for (const OpResult& r : out.finished) log.push_back(DecisionLine(r));
}

}  // namespace residency::engine
