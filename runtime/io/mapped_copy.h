// Copies out of a file mapping without dying when the file shrinks under it:
// a page past the new end raises SIGBUS, which becomes an error naming the
// file instead of killing the process.
#pragma once

#include <cstddef>
#include <string>

#include "runtime/base/status.h"

namespace residency::io {

// memcpy(dst, src, n) where src lies in a mapping of `path`.
Status CopyFromMapping(void* dst, const void* src, std::size_t n, const std::string& path);
// Reads one byte every `stride` of [p, p+n) in a mapping of `path`: a first
// touch that faults the pages in.
Status TouchMapping(const char* p, std::size_t n, std::size_t stride, const std::string& path);

}  // namespace residency::io
