// A chunked transfer: each chunk is optionally read (file -> host buffer, in
// one or more sub-reads) and then optionally copied (host <-> device).
// Limits bound reads and copies in flight; chunks that use the staging ring
// hold a slot from the start of their first read to the end of their copy.
// Completions may arrive in any order. Pure: emits commands, takes completions.
#pragma once

#include <cstddef>
#include <vector>

#include "runtime/engine/commands.h"
#include "runtime/engine/staging_ring.h"

namespace residency::engine {

struct TransferChunk {
  ModelId model = 0;
  Bytes bytes = 0;
  // Read stage (skipped when !has_read).
  bool has_read = false;
  FileId file = 0;
  Bytes file_offset = 0;
  ReadMode read_mode = ReadMode::kBuffered;
  bool spill_read = false;  // read from a scratch file (kSpillRead)
  // Host side. When `staging` is set, buffer comes from the ring at start.
  BufferId host_buffer = 0;
  Bytes host_offset = 0;
  bool host_pinned = false;
  bool staging = false;
  // Copy stage (skipped when !has_copy).
  bool has_copy = false;
  bool to_device = true;  // false: device -> host
  BufferId device_buffer = 0;
  Bytes device_offset = 0;
  // Write stage (spill): host buffer -> scratch file, after the copy.
  bool has_write = false;
  FileId write_file = 0;
  Bytes write_offset = 0;
};

struct PipelineLimits {
  int reads_in_flight_max = 1;
  int copies_in_flight_max = 1;
  Bytes read_bytes_max = 2 * kMiB;  // sub-read size
  bool serial = false;  // a chunk's read starts only after the previous chunk is done
};

// Allocates command ids; shared with the engine so ids are unique.
struct CommandIds {
  CommandId next = 1;
  CommandId Take() { return next++; }
};

class TransferPipeline {
 public:
  TransferPipeline(std::vector<TransferChunk> chunks, PipelineLimits limits);

  // Issues every command that may start now.
  void Pump(CommandIds& ids, StagingRing& ring, std::vector<Command>& out);

  // Returns false when `id` is not one of this pipeline's commands.
  bool OnComplete(const Completion& completion, StagingRing& ring);

  bool Done() const;
  int in_flight() const { return static_cast<int>(inflight_.size()); }
  const Status& status() const { return status_; }
  Bytes bytes_total() const { return bytes_total_; }

 private:
  enum class State : std::uint8_t { kPending, kReading, kReadDone, kCopying, kWriting, kDone };
  struct ChunkState {
    State state = State::kPending;
    Bytes read_issued = 0;
    int reads_pending = 0;
    int slot = -1;
  };
  enum class Stage : std::uint8_t { kRead, kCopy, kWrite };
  struct Inflight {
    CommandId id;
    std::size_t chunk;
    Stage stage;
  };

  bool IssueRead(std::size_t index, CommandIds& ids, StagingRing& ring,
                 std::vector<Command>& out);
  void IssueCopy(std::size_t index, CommandIds& ids, const StagingRing& ring,
                 std::vector<Command>& out);
  void IssueWrite(std::size_t index, CommandIds& ids, const StagingRing& ring,
                  std::vector<Command>& out);
  void FinishChunk(std::size_t index, StagingRing& ring);

  std::vector<TransferChunk> chunks_;
  std::vector<ChunkState> states_;
  PipelineLimits limits_;
  std::vector<Inflight> inflight_;
  std::vector<std::size_t> pending_writes_;  // copied chunks waiting to write
  std::size_t next_read_ = 0;
  std::size_t next_copy_ = 0;
  std::size_t done_ = 0;
  int reads_in_flight_ = 0;
  int copies_in_flight_ = 0;
  Bytes bytes_total_ = 0;
  Status status_;
};

}  // namespace residency::engine
