// Text that came from outside (a file, a request) checked before it is parsed
// and made safe before it is echoed. Pure: no I/O.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

#include "runtime/base/status.h"

namespace residency {

// `s` made safe to print in a message: control bytes and DEL as \xNN (a
// newline as \n), at most `max` bytes, then "...". A hostile name cannot
// forge a line of output or drive the terminal.
inline std::string Printable(std::string_view s, std::size_t max = 200) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (out.size() >= max) return out + "...";
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// JSON parsers stop at a NUL and skip a UTF-8 byte-order mark, so either would
// let bytes through unread: refuse both, naming where.
inline Status CheckJsonBytes(std::string_view text, std::string_view origin) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF")
    return InvalidArgument(std::string(origin) + ": starts with a UTF-8 byte-order mark (EF BB BF); JSON here must not have one");
  if (const auto nul = text.find('\0'); nul != std::string_view::npos)
    return InvalidArgument(std::string(origin) + ": a NUL byte at offset " + std::to_string(nul) +
                           " (JSON text cannot hold one; what follows it would go unread)");
  return Status::Ok();
}

}  // namespace residency
