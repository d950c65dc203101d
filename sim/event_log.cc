#include "sim/event_log.h"

namespace residency::sim {

void EventLog::Mix(std::uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    hash_ ^= (v >> (8 * i)) & 0xff;
    hash_ *= 0x100000001b3ULL;
  }
}

void EventLog::Line(std::string line) {
  if (keep_lines_) lines_.push_back(std::move(line));
}

std::string EventLog::Model(engine::ModelId id) const {
  const auto it = names_.find(id);
  return "model=" + std::to_string(id) + (it == names_.end() ? "" : "(" + it->second + ")");
}

void EventLog::Issue(engine::Nanos t, const engine::Command& c) {
  for (std::uint64_t v : {std::uint64_t{1}, static_cast<std::uint64_t>(t), c.id,
                          static_cast<std::uint64_t>(c.kind), std::uint64_t{c.model}, c.buffer,
                          c.device_buffer, static_cast<std::uint64_t>(c.bytes),
                          std::uint64_t{c.file}, static_cast<std::uint64_t>(c.file_offset),
                          static_cast<std::uint64_t>(c.buffer_offset),
                          static_cast<std::uint64_t>(c.device_offset),
                          static_cast<std::uint64_t>(c.read_mode),
                          std::uint64_t{c.pinned}, static_cast<std::uint64_t>(c.duration_ns)})
    Mix(v);
  if (keep_lines_)
    Line(std::to_string(t) + " issue #" + std::to_string(c.id) + " " +
         std::string(engine::ToString(c.kind)) + " " + Model(c.model) +
         " bytes=" + std::to_string(c.bytes) + " file=" + std::to_string(c.file) + "@" +
         std::to_string(c.file_offset) + " buf=" + std::to_string(c.buffer) + "@" +
         std::to_string(c.buffer_offset) + " dev=" + std::to_string(c.device_buffer) + "@" +
         std::to_string(c.device_offset));
}

void EventLog::Completion(engine::Nanos t, engine::CommandId id) {
  Mix(2);
  Mix(static_cast<std::uint64_t>(t));
  Mix(id);
  if (keep_lines_) Line(std::to_string(t) + " done #" + std::to_string(id));
}

void EventLog::NoticeLine(engine::Nanos t, const engine::Notice& n) {
  for (std::uint64_t v : {std::uint64_t{3}, static_cast<std::uint64_t>(t),
                          static_cast<std::uint64_t>(n.kind), std::uint64_t{n.model},
                          static_cast<std::uint64_t>(n.tier), static_cast<std::uint64_t>(n.reason),
                          static_cast<std::uint64_t>(n.bytes)})
    Mix(v);
  if (keep_lines_)
    Line(std::to_string(t) + " notice " + std::string(engine::ToString(n.kind)) + " " +
         Model(n.model) + " tier=" + std::string(engine::ToString(n.tier)) +
         " reason=" + std::string(engine::ToString(n.reason)) + " bytes=" + std::to_string(n.bytes));
}

void EventLog::OpFinished(engine::Nanos t, const engine::OpResult& r) {
  Mix(4);
  Mix(static_cast<std::uint64_t>(t));
  Mix(r.op);
  Mix(static_cast<std::uint64_t>(r.status.code()));
  if (keep_lines_)
    Line(std::to_string(t) + " op " + std::to_string(r.op) + " " +
         std::string(engine::ToString(r.kind)) + " " + r.status.ToString());
}

void EventLog::Pressure(engine::Nanos t, engine::Bytes bytes) {
  Mix(5);
  Mix(static_cast<std::uint64_t>(t));
  Mix(static_cast<std::uint64_t>(bytes));
  if (keep_lines_) Line(std::to_string(t) + " host-pressure " + std::to_string(bytes));
}

void EventLog::Oom(engine::Nanos t, const std::string& why) {
  Mix(6);
  Mix(static_cast<std::uint64_t>(t));
  for (char ch : why) Mix(static_cast<unsigned char>(ch));
  if (keep_lines_) Line(std::to_string(t) + " OOM " + why);
}

}  // namespace residency::sim
