// Messages the agent shows its clients must not reveal where things live on
// the server: its data directory, its database, its bundled data. Server
// paths are cut down to their last component ("results.db"); so is any other
// absolute path of two or more components in the text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace residency::agent {

// `server_paths`: paths known to be the server's (relative or absolute, as
// the agent was given them); each is also matched in its absolute form.
std::string WithoutServerPaths(std::string_view message, const std::vector<std::string>& server_paths);

}  // namespace residency::agent
