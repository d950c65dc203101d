#include "runtime/engine/buffer_ledger.h"

#include "runtime/engine/check.h"

namespace residency::engine {

const BufferLedger::Buffer* BufferLedger::Find(BufferId id) const {
  auto it = buffers_.find(id);
  return it == buffers_.end() ? nullptr : &it->second;
}

bool BufferLedger::Busy(BufferId id) const {
  const Buffer* b = Find(id);
  return !b || b->inflight > 0 || holds_.count(id) > 0;
}

void BufferLedger::StagedBytes(const Command& c, int sign) {
  switch (c.kind) {
    case CommandKind::kAllocHost: staged_.host_alloc += sign * c.bytes; break;
    case CommandKind::kFreeHost: staged_.host_free += sign * c.bytes; break;
    case CommandKind::kAllocDevice: staged_.device_alloc += sign * c.bytes; break;
    case CommandKind::kFreeDevice: staged_.device_free += sign * c.bytes; break;
    case CommandKind::kPin: staged_.pin_alloc += sign * c.bytes; break;
    case CommandKind::kUnpin: staged_.pin_free += sign * c.bytes; break;
    default: break;
  }
}

void BufferLedger::Holds(const Command& c, int sign) {
  for (BufferId b : {c.buffer, c.device_buffer}) {
    if (!b) continue;
    if ((holds_[b] += sign) <= 0) holds_.erase(b);
  }
}

void BufferLedger::Stage(const Command& c) {
  StagedBytes(c, +1);
  Holds(c, +1);
}

void BufferLedger::Unhold(const Command& c) { Holds(c, -1); }

void BufferLedger::Discard(const Command& c) {
  StagedBytes(c, -1);
  Holds(c, -1);
  if (c.kind == CommandKind::kAllocHost || c.kind == CommandKind::kMapFile) never_allocated_.insert(c.buffer);
  if (c.kind == CommandKind::kAllocDevice) never_allocated_.insert(c.device_buffer);
}

// The buffers a command acts on that must already exist (an allocation
// creates its own). None missing, or the first that is.
std::optional<BufferId> BufferLedger::MissingBuffer(const Command& c) const {
  auto missing = [this](BufferId id) { return buffers_.find(id) == buffers_.end(); };
  switch (c.kind) {
    case CommandKind::kPin:
    case CommandKind::kUnpin:
    case CommandKind::kFreeHost:
    case CommandKind::kUnmapFile:
    case CommandKind::kPrefault:
    case CommandKind::kReadFile:
    case CommandKind::kSpillWrite:
    case CommandKind::kSpillRead:
    case CommandKind::kAdoptHost:
      if (missing(c.buffer)) return c.buffer;
      return std::nullopt;
    case CommandKind::kFreeDevice:
      if (missing(c.device_buffer)) return c.device_buffer;
      return std::nullopt;
    case CommandKind::kCopyToDevice:
    case CommandKind::kCopyToHost:
      if (missing(c.buffer)) return c.buffer;
      if (missing(c.device_buffer)) return c.device_buffer;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

BufferLedger::Buffer& BufferLedger::Create(BufferId id, const Command& c) {
  Buffer& b = buffers_[id];
  b.bytes = c.bytes;
  b.owner = c.model;
  return b;
}

BufferLedger::Issued BufferLedger::Issue(const Command& c, Route route) {
  // A direct command was never staged: its bytes were never counted as such.
  if (route == Route::kStaged) StagedBytes(c, -1);
  // The free of an allocation a failed op discarded before issuing it:
  // nothing to free, nothing to send.
  const bool frees =
      c.kind == CommandKind::kFreeHost || c.kind == CommandKind::kUnmapFile || c.kind == CommandKind::kFreeDevice;
  if (frees && never_allocated_.erase(c.kind == CommandKind::kFreeDevice ? c.device_buffer : c.buffer)) return {};
  if (const std::optional<BufferId> gone = MissingBuffer(c))
    return {false, std::string(ToString(c.kind)) + " of model " + std::to_string(c.model) + " names buffer " +
                       std::to_string(*gone) + ", which does not exist"};
  switch (c.kind) {
    case CommandKind::kAllocHost:
      Create(c.buffer, c).staging = c.staging;
      acct_.pageable_bytes += c.bytes;
      if (c.staging) acct_.staging_bytes += c.bytes;
      break;
    case CommandKind::kMapFile:
      Create(c.buffer, c).mapped = true;
      acct_.mapped_bytes += c.bytes;
      break;
    case CommandKind::kAllocDevice: {
      Buffer& b = Create(c.device_buffer, c);
      b.device = true;
      b.activation = c.activation;
      acct_.device_bytes += c.bytes;
      if (b.activation) acct_.activation_bytes += c.bytes;
      break;
    }
    case CommandKind::kPin: {
      Buffer& b = buffers_.find(c.buffer)->second;
      RESIDENCY_CHECK(!b.pinned && !b.device && !b.mapped);
      b.pinned = true;
      acct_.pageable_bytes -= b.bytes;
      acct_.pinned_bytes += b.bytes;
      ++b.inflight;
      break;
    }
    case CommandKind::kUnpin: {
      Buffer& b = buffers_.find(c.buffer)->second;
      RESIDENCY_CHECK(b.pinned && b.inflight == 0);
      b.pinned = false;
      acct_.pinned_bytes -= b.bytes;
      acct_.pageable_bytes += b.bytes;
      break;
    }
    case CommandKind::kFreeHost:
    case CommandKind::kUnmapFile: {
      auto it = buffers_.find(c.buffer);
      const Buffer& b = it->second;
      RESIDENCY_CHECK_MSG(b.inflight == 0, "freeing a host buffer with a command in flight");
      if (b.mapped) acct_.mapped_bytes -= b.bytes;
      else if (b.pinned) acct_.pinned_bytes -= b.bytes;
      else acct_.pageable_bytes -= b.bytes;
      if (b.staging) acct_.staging_bytes -= b.bytes;
      buffers_.erase(it);
      break;
    }
    case CommandKind::kFreeDevice: {
      auto it = buffers_.find(c.device_buffer);
      const Buffer& b = it->second;
      RESIDENCY_CHECK_MSG(b.inflight == 0, "freeing a device buffer with a command in flight");
      acct_.device_bytes -= b.bytes;
      if (b.activation) acct_.activation_bytes -= b.bytes;
      buffers_.erase(it);
      break;
    }
    case CommandKind::kPrefault:
    case CommandKind::kReadFile:
    case CommandKind::kSpillWrite:
    case CommandKind::kSpillRead:
      ++buffers_.find(c.buffer)->second.inflight;
      break;
    case CommandKind::kCopyToDevice:
    case CommandKind::kCopyToHost:
      ++buffers_.find(c.buffer)->second.inflight;
      ++buffers_.find(c.device_buffer)->second.inflight;
      break;
    case CommandKind::kDropPageCache:
    case CommandKind::kCompute:
    case CommandKind::kRunFinalizer:
      break;
    case CommandKind::kAdoptHost:
      buffers_.find(c.buffer)->second.owner = c.model;
      break;
  }
  return {true, ""};
}

void BufferLedger::Settle(CommandKind kind, BufferId buffer, BufferId device_buffer) {
  auto release = [this](BufferId id) {
    auto b = buffers_.find(id);
    if (b != buffers_.end() && b->second.inflight > 0) --b->second.inflight;
  };
  switch (kind) {
    case CommandKind::kPin:
    case CommandKind::kPrefault:
    case CommandKind::kReadFile:
    case CommandKind::kSpillWrite:
    case CommandKind::kSpillRead:
      release(buffer);
      break;
    case CommandKind::kCopyToDevice:
    case CommandKind::kCopyToHost:
      release(buffer);
      release(device_buffer);
      break;
    default:
      break;
  }
}

std::vector<std::string> BufferLedger::Check(const Budgets& budgets) const {
  std::vector<std::string> v;
  auto num = [](Bytes b) { return std::to_string(b); };
  // Counters never negative and equal to the sum of what is held.
  Accounting sum;
  for (const auto& [id, b] : buffers_) {
    if (b.device) {
      sum.device_bytes += b.bytes;
      if (b.activation) sum.activation_bytes += b.bytes;
    } else if (b.mapped) {
      sum.mapped_bytes += b.bytes;
    } else if (b.pinned) {
      sum.pinned_bytes += b.bytes;
    } else {
      sum.pageable_bytes += b.bytes;
    }
    if (b.staging && !b.device) sum.staging_bytes += b.bytes;
    if (b.inflight < 0) v.push_back("buffer " + std::to_string(id) + " has negative in-flight count");
  }
  auto drift = [&](const char* name, Bytes counter, Bytes held) {
    if (counter < 0) v.push_back(std::string(name) + " counter is negative: " + num(counter));
    if (counter != held)
      v.push_back(std::string(name) + " counter " + num(counter) + " drifted from held " + num(held));
  };
  drift("pageable", acct_.pageable_bytes, sum.pageable_bytes);
  drift("pinned", acct_.pinned_bytes, sum.pinned_bytes);
  drift("device", acct_.device_bytes, sum.device_bytes);
  drift("activation", acct_.activation_bytes, sum.activation_bytes);
  drift("mapped", acct_.mapped_bytes, sum.mapped_bytes);
  drift("staging", acct_.staging_bytes, sum.staging_bytes);
  if (acct_.pinned_bytes > budgets.pin_budget_bytes)
    v.push_back("pinned " + num(acct_.pinned_bytes) + " exceeds pin budget " + num(budgets.pin_budget_bytes));
  if (acct_.device_bytes > budgets.device_limit_bytes)
    v.push_back("device " + num(acct_.device_bytes) + " exceeds device limit " + num(budgets.device_limit_bytes));
  const Bytes host = acct_.host_bytes() + (budgets.unified ? acct_.device_bytes : 0);
  if (host > budgets.host_limit_bytes)
    v.push_back("host " + num(host) + " exceeds host limit " + num(budgets.host_limit_bytes));
  return v;
}

}  // namespace residency::engine
