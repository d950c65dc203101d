#include "harness/report/real_timeline.h"

#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "sim/timeline_recorder.h"

namespace residency::harness {

sim::SimResult RealRunPicture(const executor::RunResult& run, const engine::Workload& workload,
                              const std::string& profile, const std::string& policy) {
  sim::SimResult picture;
  picture.trace = workload.name + " (real run)";
  picture.profile = profile;
  picture.policy = policy;
  picture.makespan_ns = run.wall_ns;
  picture.tally = run.tally;  // the same figures a simulated run reports
  sim::TimelineRecorder recorder(true);
  for (const engine::Op& op : workload.ops)
    if (op.kind == engine::OpKind::kRegisterModel) recorder.NameModel(op.model, op.name);
  // Memory, notices and commands arrive from different threads: merge them
  // in time order, as the simulator sees its events.
  const executor::RunTimeline& t = run.timeline;
  std::size_t m = 0, n = 0;
  // Feeds the memory samples and notices up to time `until`.
  const auto catch_up = [&](std::int64_t until) {
    for (; m < t.memory.size() && t.memory[m].time_ns <= until; ++m) {
      const auto& s = t.memory[m];
      recorder.Sample(s.time_ns, static_cast<engine::Bytes>(s.pageable_bytes),
                      static_cast<engine::Bytes>(s.pinned_bytes), static_cast<engine::Bytes>(s.device_bytes), 0);
    }
    for (; n < t.notices.size() && t.notices[n].time_ns <= until; ++n)
      recorder.Notice(t.notices[n].time_ns, t.notices[n].notice);
  };
  for (const executor::RunTimeline::TimedCommand& c : t.commands) {
    catch_up(c.end_ns);
    recorder.CommandDone(c.command, c.start_ns, c.end_ns);
  }
  catch_up(std::numeric_limits<std::int64_t>::max());
  // Prompts: from the end of a prompt's begin op to the end of its end op.
  std::map<int, std::int64_t> begun;
  for (std::size_t i = 0; i < workload.ops.size() && i < run.ops.size(); ++i) {
    const engine::Op& op = workload.ops[i];
    if (op.kind == engine::OpKind::kPromptBegin) begun[op.prompt] = run.ops[i].end_ns;
    if (op.kind == engine::OpKind::kPromptEnd && begun.count(op.prompt))
      recorder.PromptBoundary(op.prompt, begun[op.prompt], run.ops[i].end_ns);
  }
  recorder.Finish(run.wall_ns, picture);
  return picture;
}

std::string TimelinesSideBySide(const std::string& real_json, const std::string& simulated_json) {
  using json = nlohmann::ordered_json;
  json out = {{"traceEvents", json::array()}, {"displayTimeUnit", "ms"}};
  int pid = 1;
  for (const std::string* text : {&real_json, &simulated_json}) {
    json one = json::parse(*text);
    for (json& e : one["traceEvents"]) {
      e["pid"] = pid;
      if (e.value("name", "") == "process_name")
        e["args"]["name"] = std::string(pid == 1 ? "real: " : "simulated: ") + e["args"]["name"].get<std::string>();
      out["traceEvents"].push_back(std::move(e));
    }
    out["traceEvents"].push_back({{"ph", "M"}, {"pid", pid}, {"name", "process_sort_index"},
                                  {"args", {{"sort_index", pid}}}});
    ++pid;
  }
  return out.dump();
}

}  // namespace residency::harness
