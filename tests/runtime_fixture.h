// Shared by the runtime tests: a scratch directory removed on exit, and
// model files generated from a trace's declared sizes.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "runtime/engine/ops.h"
#include "runtime/safetensors/writer.h"

namespace residency::testing {

class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag) {
    std::string templ = (std::filesystem::temp_directory_path() / ("residency-" + tag + "-XXXXXX")).string();
    path_ = ::mkdtemp(templ.data()) ? templ : "";
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }

 private:
  std::string path_;
};

// Writes every model file the workload declares into `dir`.
inline void WriteModelFiles(const engine::Workload& w, const ScratchDir& dir) {
  std::uint64_t seed = 1;
  for (const engine::Op& op : w.ops) {
    if (op.kind != engine::OpKind::kRegisterModel) continue;
    for (const engine::FileSpec& f : op.files) {
      auto specs = safetensors::FitToFileSize(f.path, f.tensor_bytes, f.bytes);
      ASSERT_TRUE(specs.ok()) << specs.status().message();
      const std::string path = dir.File(std::filesystem::path(f.path).filename().string());
      ASSERT_TRUE(safetensors::WriteFile(path, specs.value(), seed++).ok());
    }
  }
}

// True when the directory's filesystem accepts O_DIRECT (tmpfs does not).
bool DirectIoWorks(const std::string& file);

}  // namespace residency::testing
