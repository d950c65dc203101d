#include "harness/agent/client_message.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

namespace residency::agent {
namespace {

// Where a path ends in free text.
bool EndsPath(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\'' || c == '"' || c == ':' || c == ',' ||
         c == ';' || c == ')' || c == ']' || c == '}' || c == '>';
}
// Where an absolute path may begin in free text.
bool OpensPath(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\'' || c == '"' || c == '(' || c == '[' || c == '=' ||
         c == '<' || c == ':';
}

std::string LastComponent(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const auto slash = path.rfind('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  return base.empty() ? "<path>" : base;
}

// Replaces every path that starts with `prefix` by its last component.
void CutPrefix(std::string& text, const std::string& prefix) {
  std::size_t pos = 0;
  while ((pos = text.find(prefix, pos)) != std::string::npos) {
    std::size_t end = pos + prefix.size();
    while (end < text.size() && !EndsPath(text[end])) ++end;
    const std::string base = LastComponent(text.substr(pos, end - pos));
    text.replace(pos, end - pos, base);
    pos += base.size();
  }
}

}  // namespace

std::string WithoutServerPaths(std::string_view message, const std::vector<std::string>& server_paths) {
  std::string text(message);
  std::vector<std::string> prefixes;
  for (const std::string& p : server_paths) {
    if (p.empty() || p == "/" || p == ".") continue;
    prefixes.push_back(p);
    std::error_code ec;
    const std::string abs = std::filesystem::absolute(p, ec).lexically_normal().string();
    if (!ec && !abs.empty()) prefixes.push_back(abs);
  }
  // Longest first, so that a directory does not cut a file inside it short.
  std::sort(prefixes.begin(), prefixes.end(), [](const std::string& a, const std::string& b) {
    return a.size() > b.size();
  });
  for (const std::string& p : prefixes) CutPrefix(text, p);
  // Any other absolute path of two or more components (a quoted one may hold spaces).
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '/' || (i > 0 && !OpensPath(text[i - 1]))) continue;
    std::size_t end = i;
    while (end < text.size() && !EndsPath(text[end])) ++end;
    if (i > 0 && (text[i - 1] == '\'' || text[i - 1] == '"')) {  // quoted: spaces and all, to the quote
      const std::size_t close = text.find(text[i - 1], i);
      if (close != std::string::npos) end = close;
    }
    const std::string token = text.substr(i, end - i);
    if (std::count(token.begin(), token.end(), '/') < 2) continue;
    const std::string base = LastComponent(token);
    text.replace(i, end - i, base);
    i += base.size() - 1;
  }
  return text;
}

}  // namespace residency::agent
