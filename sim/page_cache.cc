#include "sim/page_cache.h"

#include <algorithm>

namespace residency::sim {

Bytes PageCache::BlockBytes(const FileBlocks& f, std::size_t index) const {
  const Bytes start = static_cast<Bytes>(index) * kBlockBytes;
  return std::min(kBlockBytes, f.file_bytes - start);
}

Bytes PageCache::CachedBytes(FileId file, Bytes offset, Bytes bytes) const {
  auto it = files_.find(file);
  if (it == files_.end() || bytes <= 0) return 0;
  const FileBlocks& f = it->second;
  Bytes cached = 0;
  const Bytes end = std::min(offset + bytes, f.file_bytes);
  for (Bytes pos = offset; pos < end;) {
    const std::size_t b = static_cast<std::size_t>(pos / kBlockBytes);
    const Bytes block_end = std::min(static_cast<Bytes>(b + 1) * kBlockBytes, end);
    if (f.cached[b]) cached += block_end - pos;
    pos = block_end;
  }
  return cached;
}

void PageCache::Touch(FileId file) {
  auto it = files_.find(file);
  if (it == files_.end()) return;
  lru_.splice(lru_.end(), lru_, it->second.lru);
}

Bytes PageCache::Insert(FileId file, Bytes file_bytes, Bytes offset, Bytes bytes, Bytes limit) {
  auto it = files_.find(file);
  if (it == files_.end()) {
    FileBlocks f;
    f.file_bytes = file_bytes;
    f.cached.assign(static_cast<std::size_t>((file_bytes + kBlockBytes - 1) / kBlockBytes), false);
    lru_.push_back(file);
    f.lru = std::prev(lru_.end());
    it = files_.emplace(file, std::move(f)).first;
  } else {
    Touch(file);
  }
  Bytes added = 0;
  const Bytes end = std::min(offset + bytes, it->second.file_bytes);
  for (Bytes pos = offset - offset % kBlockBytes; pos < end; pos += kBlockBytes) {
    FileBlocks& f = files_.at(file);
    const std::size_t b = static_cast<std::size_t>(pos / kBlockBytes);
    if (f.cached[b]) continue;
    const Bytes size = BlockBytes(f, b);
    if (total_ + size > limit) {
      ShrinkTo(limit - size);  // older files first; this file is most recent
      if (total_ + size > limit) break;
    }
    FileBlocks& g = files_.at(file);
    g.cached[b] = true;
    g.tail = std::max(g.tail, b + 1);
    g.bytes += size;
    total_ += size;
    added += size;
  }
  return added;
}

Bytes PageCache::ReclaimFrom(FileId file, Bytes goal) {
  FileBlocks& f = files_.at(file);
  Bytes freed = 0;
  if (f.bytes == 0) return 0;
  std::size_t b = f.tail;
  while (b > 0 && freed < goal) {
    --b;
    if (!f.cached[b]) continue;
    const Bytes size = BlockBytes(f, b);
    f.cached[b] = false;
    f.bytes -= size;
    freed += size;
  }
  f.tail = b;  // blocks [b, old tail) are uncached now
  total_ -= freed;
  return freed;
}

Bytes PageCache::ShrinkTo(Bytes limit) {
  Bytes freed = 0;
  limit = std::max<Bytes>(0, limit);
  for (auto it = lru_.begin(); it != lru_.end() && total_ > limit;) {
    const FileId file = *it;
    ++it;
    freed += ReclaimFrom(file, total_ - limit);
  }
  return freed;
}

void PageCache::Drop(FileId file) {
  auto it = files_.find(file);
  if (it == files_.end()) return;
  total_ -= it->second.bytes;
  lru_.erase(it->second.lru);
  files_.erase(it);
}

}  // namespace residency::sim
