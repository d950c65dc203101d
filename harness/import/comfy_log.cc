#include "harness/import/comfy_log.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <deque>
#include <map>
#include <optional>
#include <sstream>

namespace residency::import {
namespace {

using engine::Nanos;
using traces::EventType;
using traces::TraceEvent;
constexpr std::int64_t kMiB = 1 << 20;

// The numbers in `s` (decimal or scientific notation), in order.
std::vector<double> Numbers(const std::string& s) {
  std::vector<double> out;
  for (std::size_t i = 0; i < s.size();) {
    if (std::isdigit(static_cast<unsigned char>(s[i])) ||
        (s[i] == '.' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      std::size_t j = i;
      while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '.')) ++j;
      if (j + 1 < s.size() && (s[j] == 'e' || s[j] == 'E') &&
          (std::isdigit(static_cast<unsigned char>(s[j + 1])) || s[j + 1] == '+' || s[j + 1] == '-')) {
        ++j;
        if (s[j] == '+' || s[j] == '-') ++j;
        while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      }
      const std::string tok = s.substr(i, j - i);
      char* end = nullptr;
      const double v = std::strtod(tok.c_str(), &end);
      if (end != tok.c_str() && std::isfinite(v)) out.push_back(v);
      i = j;
    } else {
      ++i;
    }
  }
  return out;
}

// The word after `key` in `line` (letters, digits, _ . -), or "".
std::string WordAfter(const std::string& line, const std::string& key) {
  const auto at = line.find(key);
  if (at == std::string::npos) return "";
  std::size_t i = at + key.size();
  while (i < line.size() && line[i] == ' ') ++i;
  std::size_t j = i;
  while (j < line.size() && (std::isalnum(static_cast<unsigned char>(line[j])) || line[j] == '_' || line[j] == '.' ||
                             line[j] == '-'))
    ++j;
  return line.substr(i, std::min<std::size_t>(j - i, 64));
}

// "12.5 MB loaded" -> 12.5 (the number just before `unit_word`).
std::optional<double> NumberBefore(const std::string& line, const std::string& unit_word) {
  const auto at = line.find(unit_word);
  if (at == std::string::npos) return std::nullopt;
  const std::vector<double> nums = Numbers(line.substr(0, at));
  if (nums.empty()) return std::nullopt;
  return nums.back();
}

// A log number as an integer, or `fallback` when it is out of [0, limit]: a
// double past int64's range would make the cast undefined.
std::int64_t BoundedInt(double v, double limit, std::int64_t fallback) {
  return v >= 0 && v <= limit ? static_cast<std::int64_t>(v) : fallback;
}

std::int64_t MiBToBytes(double mib) {
  if (!(mib > 0) || mib > 1e9) return 0;  // over a petabyte: a sentinel such as 1e32, not a size
  return static_cast<std::int64_t>(std::llround(mib * static_cast<double>(kMiB)));
}

struct Model {
  std::int64_t bytes = 0;
  bool exact = false;  // from a complete or dynamic load, not a partial one
  int first_line = 0;
};

class Importer {
 public:
  explicit Importer(std::string origin) : origin_(std::move(origin)) {}

  void Line(const std::string& line, int number) {
    number_ = number;
    if (line.find("Total VRAM") != std::string::npos && line.find("total RAM") != std::string::npos) {
      const auto v = NumberBefore(line, "MB, total RAM");
      const auto r = NumberBefore(line.substr(line.find("total RAM")), "MB");
      if (v) result_.vram_mib = BoundedInt(*v, 1e12, 0);
      if (r) result_.ram_mib = BoundedInt(*r, 1e12, 0);
    } else if (line.find("got prompt") != std::string::npos) {
      BeginPrompt(false);
    } else if (line.find("Requested to load") != std::string::npos) {
      const std::string name = WordAfter(line, "Requested to load");
      if (name.empty()) return Warn("'Requested to load' without a model name");
      EnsurePrompt();
      pending_.push_back({name, number});
    } else if (line.find("loaded completely") != std::string::npos) {
      // "loaded completely A B True" (B = model MB) or "... X MB usable, Y MB loaded, full load: True"
      std::optional<double> mib = NumberBefore(line, "MB loaded");
      if (!mib) {
        const auto nums = Numbers(line.substr(line.find("loaded completely")));
        if (nums.size() >= 2) mib = nums[1];
      }
      Load(PopPending(""), engine::LoadMode::kFull, mib ? MiBToBytes(*mib) : 0, 0, true);
    } else if (line.find("loaded partially") != std::string::npos) {
      // "loaded partially A B C" (B = MB loaded) or "... Y MB loaded, Z MB offloaded ..."
      std::optional<double> loaded = NumberBefore(line, "MB loaded");
      const std::optional<double> offloaded = NumberBefore(line, "MB offloaded");
      if (!loaded) {
        const auto nums = Numbers(line.substr(line.find("loaded partially")));
        if (nums.size() >= 2) loaded = nums[1];
      }
      const std::int64_t on_device = loaded ? MiBToBytes(*loaded) : 0;
      const std::int64_t total = on_device + (offloaded ? MiBToBytes(*offloaded) : 0);
      Load(PopPending(""), engine::LoadMode::kPartial, total, on_device, offloaded.has_value());
    } else if (line.find("prepared for dynamic VRAM loading") != std::string::npos) {
      const std::string name = WordAfter(line, "Model");
      const std::optional<double> mib = NumberBefore(line, "MB Staged");
      Load(PopPending(name), engine::LoadMode::kDynamic, mib ? MiBToBytes(*mib) : 0, 0, true);
    } else if (line.find("Prompt executed in") != std::string::npos) {
      const auto nums = Numbers(line.substr(line.find("Prompt executed in")));
      EndPrompt(nums.empty() ? -1 : BoundedInt(nums[0] * 1e9, 1e18, -1));
    } else if (line.find('|') != std::string::npos &&
               (line.find("it]") != std::string::npos || line.find("it/s]") != std::string::npos)) {
      // tqdm prints "3.82s/it]" for slow steps and "1.30it/s]" for fast ones.
      Progress(line);
    }
  }

  Result<ImportResult> Finish() {
    if (prompt_open_) {
      Warn("the log ends inside prompt " + std::to_string(prompt_) + " (no 'Prompt executed')");
      EndPrompt(-1);
    }
    for (const auto& [name, line] : pending_)
      result_.warnings.push_back(origin_ + ":" + std::to_string(line) + ": '" + name +
                                 "' was requested but no load line follows; left out");
    if (models_.empty()) return NotFound(origin_ + ": no model loads found (no 'loaded completely', 'loaded partially' or 'prepared for dynamic VRAM loading' lines)");
    if (!saw_progress_)
      result_.warnings.push_back(origin_ + ": no sampler progress bars: compute time is unknown and left out; the prompts keep their measured times");
    traces::Trace& t = result_.trace;
    t.header.name = "imported-comfyui-log";
    t.header.source = "imported:comfyui-log";
    t.header.description = "imported from " + origin_;
    if (result_.vram_mib >= 0)
      t.header.description += " (machine: " + std::to_string(result_.vram_mib) + " MB VRAM, " +
                              std::to_string(result_.ram_mib) + " MB RAM)";
    std::vector<TraceEvent> models;
    for (const auto& [name, m] : models_) {
      TraceEvent e;
      e.type = EventType::kModel;
      e.model = name;
      traces::TraceFile f;
      f.path = name + ".safetensors";
      f.bytes = m.bytes;
      // Tensor sizes are not in the log: about 16 MiB each, uniform.
      f.distribution = traces::TensorDistribution{std::max<std::int64_t>(1, std::min<std::int64_t>(m.bytes / (16 * kMiB), 100000)), "uniform", 1};
      e.files.push_back(f);
      models.push_back(e);
      if (!m.exact)
        result_.warnings.push_back(origin_ + ":" + std::to_string(m.first_line) + ": the size of '" + name +
                                   "' comes from a partial load only: a lower bound");
    }
    result_.warnings.push_back(origin_ + ": tensor counts are not in the log: each model is split into ~16 MiB tensors");
    t.events.insert(t.events.begin(), models.begin(), models.end());
    // Partial loads keep device_bytes below the model's final size.
    for (TraceEvent& e : t.events) {
      if (e.type != EventType::kLoad || e.mode != engine::LoadMode::kPartial) continue;
      e.device_bytes = std::min(e.device_bytes, models_[e.model].bytes - 1);
      if (e.device_bytes <= 0) e.mode = engine::LoadMode::kDynamic;
    }
    return result_;
  }

 private:
  void Warn(const std::string& what) {
    result_.warnings.push_back(origin_ + ":" + std::to_string(number_) + ": " + what);
  }
  void EnsurePrompt() {
    if (!prompt_open_) BeginPrompt(true);
  }
  void BeginPrompt(bool implicit) {
    if (prompt_open_) {
      Warn("a new prompt starts before prompt " + std::to_string(prompt_) + " finished");
      EndPrompt(-1);
    }
    if (implicit) Warn("loads before any 'got prompt': starting a prompt here");
    ++prompt_;
    prompt_open_ = true;
    TraceEvent e;
    e.type = EventType::kPromptBegin;
    e.prompt = prompt_;
    Emit(e);
  }
  void EndPrompt(Nanos measured) {
    if (!prompt_open_) {
      Warn("'Prompt executed' without an open prompt; ignored");
      return;
    }
    for (const auto& [name, handles] : handles_) {
      for (int i = 0; i < handles; ++i) {
        TraceEvent r;
        r.type = EventType::kRelease;
        r.model = name;
        Emit(r);
      }
    }
    handles_.clear();
    loaded_in_prompt_.clear();
    TraceEvent e;
    e.type = EventType::kPromptEnd;
    e.prompt = prompt_;
    e.measured_wall_ns = measured;
    Emit(e);
    prompt_open_ = false;
  }
  std::string PopPending(const std::string& name) {
    if (!name.empty()) {
      for (auto it = pending_.begin(); it != pending_.end(); ++it) {
        if (it->first == name) {
          pending_.erase(it);
          return name;
        }
      }
      // The line names the model differently from its request: it still
      // answers the oldest request.
      if (!pending_.empty()) pending_.pop_front();
      return name;
    }
    if (pending_.empty()) return "";
    std::string front = pending_.front().first;
    pending_.pop_front();
    return front;
  }
  void Load(const std::string& name, engine::LoadMode mode, std::int64_t bytes, std::int64_t device_bytes,
            bool exact) {
    if (name.empty()) return Warn("a load line with no 'Requested to load' before it; ignored");
    if (bytes <= 0) return Warn("no usable size for '" + name + "'; its load is left out");
    EnsurePrompt();
    Model& m = models_[name];
    if (m.first_line == 0) m.first_line = number_;
    if (exact) {
      m.bytes = m.exact ? std::max(m.bytes, bytes) : bytes;  // exact sizes replace lower bounds
      m.exact = true;
    } else if (!m.exact) {
      m.bytes = std::max(m.bytes, bytes);
    }
    if (mode == engine::LoadMode::kPartial && device_bytes <= 0) mode = engine::LoadMode::kDynamic;
    TraceEvent e;
    e.type = EventType::kLoad;
    e.model = name;
    e.mode = mode;
    e.device_bytes = device_bytes;
    Emit(e);
    ++handles_[name];
    loaded_in_prompt_.push_back(name);
  }
  // A finished tqdm bar, "20/20 [00:15<00:00, 1.30it/s]": the sampler ran
  // 20 steps in 15 s on the model loaded last.
  void Progress(const std::string& raw) {
    std::string line = raw.substr(raw.rfind('\r') == std::string::npos ? 0 : raw.rfind('\r') + 1);
    const auto bracket = line.find('[');
    const auto bar = line.rfind('|', bracket);
    if (bracket == std::string::npos || bar == std::string::npos) return;
    const auto counts = Numbers(line.substr(bar, bracket - bar));
    const auto times = line.substr(bracket + 1, line.find('<', bracket) - bracket - 1);
    if (counts.size() < 2 || counts[0] != counts[1] || counts[1] < 1 || counts[1] > 100000) return;
    // "h:mm:ss" or "mm:ss"; a bar over a year long is noise, not a timing.
    std::int64_t seconds = 0;
    for (double part : Numbers(times)) {
      const std::int64_t whole = BoundedInt(part, 1e7, -1);
      seconds = seconds * 60 + whole;
      if (whole < 0 || seconds > 365LL * 24 * 3600) return Warn("a progress bar over a year long; ignored");
    }
    if (loaded_in_prompt_.empty()) return Warn("a progress bar with no model loaded in this prompt; ignored");
    saw_progress_ = true;
    TraceEvent e;
    e.type = EventType::kCompute;
    e.models = {loaded_in_prompt_.back()};
    e.steps = static_cast<int>(counts[1]);
    e.step_ns = seconds * 1'000'000'000 / e.steps;
    Emit(e);
  }
  void Emit(TraceEvent e) {
    e.line = number_;
    result_.trace.events.push_back(std::move(e));
  }

  std::string origin_;
  ImportResult result_;
  int number_ = 0;
  int prompt_ = 0;
  bool prompt_open_ = false;
  bool saw_progress_ = false;
  std::deque<std::pair<std::string, int>> pending_;
  std::map<std::string, Model> models_;
  std::map<std::string, int> handles_;
  std::vector<std::string> loaded_in_prompt_;
};

}  // namespace

Result<ImportResult> ImportComfyLog(const std::string& text, const std::string& origin) {
  Importer im(origin);
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.size() > 100000) line.resize(100000);  // a pathological line: its head is enough
    im.Line(line, number);
  }
  RESIDENCY_ASSIGN_OR_RETURN(ImportResult r, im.Finish());
  // What we emit must read back as a valid trace.
  const std::string written = traces::WriteTrace(r.trace);
  RESIDENCY_ASSIGN_OR_RETURN(traces::Trace again, traces::ParseTrace(written, origin + " (imported)"));
  RESIDENCY_ASSIGN_OR_RETURN(engine::Workload w, traces::ToWorkload(again, origin + " (imported)"));
  (void)w;
  return r;
}

}  // namespace residency::import
