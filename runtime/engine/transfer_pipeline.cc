#include "runtime/engine/transfer_pipeline.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace residency::engine {

TransferPipeline::TransferPipeline(std::vector<TransferChunk> chunks, PipelineLimits limits)
    : chunks_(std::move(chunks)), states_(chunks_.size()), limits_(limits) {
  limits_.reads_in_flight_max = std::max(1, limits_.reads_in_flight_max);
  limits_.copies_in_flight_max = std::max(1, limits_.copies_in_flight_max);
  limits_.read_bytes_max = std::max<Bytes>(1, limits_.read_bytes_max);
  for (std::size_t i = 0; i < chunks_.size(); ++i) {
    bytes_total_ += chunks_[i].bytes;
    // Chunks without a read start as if their read were done.
    if (!chunks_[i].has_read) states_[i].state = State::kReadDone;
  }
}

bool TransferPipeline::Done() const {
  if (!inflight_.empty() || !pending_writes_.empty()) return false;
  return !status_.ok() || done_ == chunks_.size();
}

void TransferPipeline::Pump(CommandIds& ids, StagingRing& ring, std::vector<Command>& out) {
  if (!status_.ok()) return;
  for (std::size_t index : pending_writes_) IssueWrite(index, ids, ring, out);
  pending_writes_.clear();
  // Copies go out in chunk order, like work on one copy stream.
  while (next_copy_ < chunks_.size() && copies_in_flight_ < limits_.copies_in_flight_max) {
    const TransferChunk& c = chunks_[next_copy_];
    ChunkState& s = states_[next_copy_];
    if (s.state != State::kReadDone) break;
    if (c.staging && s.slot < 0) {  // a chunk with no read takes its slot here
      s.slot = ring.Acquire();
      if (s.slot < 0) break;
    }
    const std::size_t index = next_copy_++;
    if (c.has_copy) {
      IssueCopy(index, ids, ring, out);
    } else if (c.has_write) {
      IssueWrite(index, ids, ring, out);
    } else {
      FinishChunk(index, ring);
    }
  }
  // Reads in chunk order, split into sub-reads, bounded in flight.
  while (next_read_ < chunks_.size() && reads_in_flight_ < limits_.reads_in_flight_max) {
    const TransferChunk& c = chunks_[next_read_];
    if (!c.has_read || states_[next_read_].read_issued >= c.bytes) {
      ++next_read_;
      continue;
    }
    if (limits_.serial && next_read_ > 0 && states_[next_read_ - 1].state != State::kDone) break;
    if (!IssueRead(next_read_, ids, ring, out)) break;
  }
}

bool TransferPipeline::IssueRead(std::size_t index, CommandIds& ids, StagingRing& ring,
                                 std::vector<Command>& out) {
  const TransferChunk& c = chunks_[index];
  ChunkState& s = states_[index];
  if (c.staging && s.slot < 0) {
    s.slot = ring.Acquire();
    if (s.slot < 0) return false;  // wait for a copy to free a slot
  }
  const Bytes part = c.spill_read ? c.bytes - s.read_issued
                                  : std::min(limits_.read_bytes_max, c.bytes - s.read_issued);
  Command cmd;
  cmd.id = ids.Take();
  cmd.kind = c.spill_read ? CommandKind::kSpillRead : CommandKind::kReadFile;
  cmd.model = c.model;
  cmd.file = c.file;
  cmd.file_offset = c.file_offset + s.read_issued;
  cmd.bytes = part;
  cmd.read_mode = c.read_mode;
  cmd.staging = c.staging;
  cmd.buffer = c.staging ? ring.slot(s.slot).buffer : c.host_buffer;
  cmd.pinned = c.staging ? ring.slot(s.slot).pinned : c.host_pinned;
  cmd.buffer_offset = (c.staging ? 0 : c.host_offset) + s.read_issued;
  s.read_issued += part;
  ++s.reads_pending;
  s.state = State::kReading;
  ++reads_in_flight_;
  inflight_.push_back({cmd.id, index, Stage::kRead});
  out.push_back(cmd);
  return true;
}

void TransferPipeline::IssueCopy(std::size_t index, CommandIds& ids, const StagingRing& ring,
                                 std::vector<Command>& out) {
  const TransferChunk& c = chunks_[index];
  ChunkState& s = states_[index];
  Command cmd;
  cmd.id = ids.Take();
  cmd.kind = c.to_device ? CommandKind::kCopyToDevice : CommandKind::kCopyToHost;
  cmd.model = c.model;
  cmd.bytes = c.bytes;
  cmd.staging = c.staging;
  cmd.buffer = c.staging ? ring.slot(s.slot).buffer : c.host_buffer;
  cmd.pinned = c.staging ? ring.slot(s.slot).pinned : c.host_pinned;
  cmd.buffer_offset = c.staging ? 0 : c.host_offset;
  cmd.device_buffer = c.device_buffer;
  cmd.device_offset = c.device_offset;
  s.state = State::kCopying;
  ++copies_in_flight_;
  inflight_.push_back({cmd.id, index, Stage::kCopy});
  out.push_back(cmd);
}

void TransferPipeline::IssueWrite(std::size_t index, CommandIds& ids, const StagingRing& ring,
                                  std::vector<Command>& out) {
  const TransferChunk& c = chunks_[index];
  ChunkState& s = states_[index];
  Command cmd;
  cmd.id = ids.Take();
  cmd.kind = CommandKind::kSpillWrite;
  cmd.model = c.model;
  cmd.bytes = c.bytes;
  cmd.staging = c.staging;
  cmd.buffer = c.staging ? ring.slot(s.slot).buffer : c.host_buffer;
  cmd.pinned = c.staging ? ring.slot(s.slot).pinned : c.host_pinned;
  cmd.buffer_offset = c.staging ? 0 : c.host_offset;
  cmd.file = c.write_file;
  cmd.file_offset = c.write_offset;
  s.state = State::kWriting;
  inflight_.push_back({cmd.id, index, Stage::kWrite});
  out.push_back(cmd);
}

void TransferPipeline::FinishChunk(std::size_t index, StagingRing& ring) {
  ChunkState& s = states_[index];
  if (s.slot >= 0) {
    ring.Release(s.slot);
    s.slot = -1;
  }
  s.state = State::kDone;
  ++done_;
}

bool TransferPipeline::OnComplete(const Completion& completion, StagingRing& ring) {
  auto it = std::find_if(inflight_.begin(), inflight_.end(),
                         [&](const Inflight& f) { return f.id == completion.id; });
  if (it == inflight_.end()) return false;
  const Inflight entry = *it;
  inflight_.erase(it);
  ChunkState& s = states_[entry.chunk];
  const TransferChunk& c = chunks_[entry.chunk];
  switch (entry.stage) {
    case Stage::kRead:
      --reads_in_flight_;
      --s.reads_pending;
      if (s.reads_pending == 0 && s.read_issued >= c.bytes) s.state = State::kReadDone;
      break;
    case Stage::kCopy:
      --copies_in_flight_;
      if (c.has_write && completion.status.ok()) {
        s.state = State::kCopying;  // the write is issued on the next pump
        pending_writes_.push_back(entry.chunk);
      } else {
        FinishChunk(entry.chunk, ring);
      }
      break;
    case Stage::kWrite:
      FinishChunk(entry.chunk, ring);
      break;
  }
  if (!completion.status.ok() && status_.ok()) status_ = completion.status;
  if (!status_.ok()) {
    // Nothing new starts; release slots of chunks with nothing in flight.
    for (std::size_t i = 0; i < states_.size(); ++i) {
      const bool busy = std::any_of(inflight_.begin(), inflight_.end(),
                                    [&](const Inflight& f) { return f.chunk == i; });
      if (!busy && states_[i].slot >= 0) {
        ring.Release(states_[i].slot);
        states_[i].slot = -1;
      }
    }
    pending_writes_.clear();
  }
  return true;
}

}  // namespace residency::engine
