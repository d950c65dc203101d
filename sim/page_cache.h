// The OS page cache, per file, in 2 MiB blocks. Buffered reads fill it; it
// occupies RAM and is reclaimed least-recently-used file first when anonymous
// memory needs the room. Reads of cached blocks run at memcpy speed.
#pragma once

#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

#include "runtime/engine/types.h"

namespace residency::sim {

using engine::Bytes;
using engine::FileId;

class PageCache {
 public:
  static constexpr Bytes kBlockBytes = 2 * engine::kMiB;

  // Bytes of [offset, offset+bytes) of `file` that are cached.
  Bytes CachedBytes(FileId file, Bytes offset, Bytes bytes) const;
  // Marks the range cached (touching the file in LRU order). Never grows past
  // `limit` bytes in total: older files are reclaimed first, then the insert
  // is cut short. Returns bytes newly cached.
  Bytes Insert(FileId file, Bytes file_bytes, Bytes offset, Bytes bytes, Bytes limit);
  void Touch(FileId file);
  void Drop(FileId file);
  // Reclaims until total <= limit; returns bytes reclaimed.
  Bytes ShrinkTo(Bytes limit);
  Bytes total() const { return total_; }

 private:
  struct FileBlocks {
    std::vector<bool> cached;
    Bytes file_bytes = 0;
    Bytes bytes = 0;
    // Every block at or past `tail` is uncached, so reclaiming (from the end
    // of the file backwards) never rescans an uncached tail: without it a
    // file reclaimed block by block costs O(blocks) per block.
    std::size_t tail = 0;
    std::list<FileId>::iterator lru;
  };
  Bytes BlockBytes(const FileBlocks& f, std::size_t index) const;
  Bytes ReclaimFrom(FileId file, Bytes goal);

  std::unordered_map<FileId, FileBlocks> files_;
  std::list<FileId> lru_;  // front = least recently used
  Bytes total_ = 0;
};

}  // namespace residency::sim
