#include "harness/import/comfy_log.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "harness/import/comfy_class_sizes.h"
#include "harness/import/comfy_log_lines.h"

namespace residency::import {
namespace {

using engine::LoadMode;
using engine::Nanos;
using traces::EventType;
using traces::TraceEvent;
constexpr double kMiB = 1 << 20;
constexpr double kSameSizeMiB = 1.5;  // logs print two decimals of MB; sizes move a little with patches
// Dynamic VRAM's staged size of one model moves by a few MB between prompts
// (13279 then 13282 MB): within this fraction it is still the same model.
constexpr double kSameSizeFraction = 0.0025;
// A stated size this close to a class's typical size names that class among
// several pending requests (SDXL's 4897 MB, ControlNet's 2397 MB).
constexpr double kTypicalSizeFraction = 0.05;

std::int64_t MiBToBytes(double mib) {
  if (!(mib > 0) || mib > 1e9) return 0;  // over a petabyte: a sentinel such as 1e32, not a size
  return static_cast<std::int64_t>(std::llround(mib * kMiB));
}

std::int64_t BoundedInt(double v, double limit, std::int64_t fallback) {
  return v >= 0 && v <= limit ? static_cast<std::int64_t>(v) : fallback;
}

enum class SizeFrom { kStated, kLowerBound, kClassDefault };

struct Model {
  std::string name, cls;
  double mib = 0;
  SizeFrom from = SizeFrom::kStated;
  double device_mib = 0;  // on the device now, as the lines tell it
  LoadMode last_mode = LoadMode::kFull;
  int first_line = 0;
  int last_load = 0;  // order of its last load
  bool emptied = false;  // unloaded to nothing since its last load
};

// A load line's content before it is paired with a request.
struct LoadLine {
  LoadMode mode = LoadMode::kFull;
  double mib = 0;        // the model's size, or its lower bound
  bool exact = false;    // mib is the model's size
  double device_mib = 0; // on the device after the load
  std::string cls;       // named by the line itself (dynamic loads)
};

class Importer {
 public:
  explicit Importer(std::string origin) : origin_(std::move(origin)) {}

  void Line(const std::string& raw, int number) {
    const std::vector<LogLine> lines = ClassifyLine(raw);
    if (lines.empty()) return;  // blank or noise: it neither starts nor ends a run of bars
    const LogLine& one = lines.front();
    if (lines.size() == 1 && one.kind == LineKind::kProgress && one.count == one.total && !one.labelled &&
        one.elapsed_s >= 0) {
      bar_run_.push_back({one, number});
      return;
    }
    FlushBars();
    number_ = number;
    for (const LogLine& l : lines) Handle(l);
  }

  Result<ImportResult> Finish() {
    FlushBars();
    if (prompt_open_) {
      Warn("the log ends inside prompt " + std::to_string(prompt_) + " (no 'Prompt executed')");
      EndPrompt(-1);
    }
    if (models_.empty()) return NotFound(NothingFound());
    BuildHeader();
    std::vector<TraceEvent> defs;
    int stated = 0, lower = 0, defaulted = 0;
    for (Model& m : models_) {
      if (m.from == SizeFrom::kLowerBound) {
        std::string what = "the size of '" + m.name + "' comes from a partial load only: a lower bound";
        const double typical = TypicalClassMiB(m.cls);
        if (typical > m.mib) {
          m.mib = typical;
          what += " below its class's typical " + std::to_string(static_cast<int>(typical)) + " MB, which is used";
        }
        Warn(m.first_line, what);
      }
      TraceEvent e;
      e.type = EventType::kModel;
      e.model = m.name;
      e.line = m.first_line;
      traces::TraceFile f;
      f.path = m.name + ".safetensors";
      f.bytes = std::max<std::int64_t>(1, MiBToBytes(m.mib));
      // Tensor sizes are not in a log: about 16 MiB each, uniform.
      f.distribution = traces::TensorDistribution{
          std::clamp<std::int64_t>(f.bytes / (16 << 20), 1, 100000), "uniform", 1};
      e.files.push_back(f);
      e.inferred = {"tensors"};
      if (m.from != SizeFrom::kStated) e.inferred.push_back("bytes");
      (m.from == SizeFrom::kStated ? stated : m.from == SizeFrom::kLowerBound ? lower : defaulted)++;
      defs.push_back(std::move(e));
    }
    traces::Trace& t = result_.trace;
    t.events.insert(t.events.begin(), defs.begin(), defs.end());
    // A partial load keeps device_bytes below the model's final size.
    for (TraceEvent& e : t.events) {
      if (e.type != EventType::kLoad || e.mode != LoadMode::kPartial) continue;
      const std::int64_t size = MiBToBytes(Find(e.model)->mib);
      e.device_bytes = std::min(e.device_bytes, size - 1);
      if (e.device_bytes <= 0) e.mode = LoadMode::kDynamic;
    }
    RaiseAnImpossibleVram();
    Summarize(stated, lower, defaulted);
    return std::move(result_);
  }

 private:
  // ----- lines -----
  void Handle(const LogLine& l) {
    ++seen_[l.kind];
    // A dynamic VRAM line is sometimes printed twice in a row: one load.
    const auto dynamic = l.kind == LineKind::kDynamic ? std::optional(std::pair(l.text, l.a)) : std::nullopt;
    const bool repeated = dynamic && dynamic == last_dynamic_;
    last_dynamic_ = dynamic;
    if (repeated) return;
    switch (l.kind) {
      case LineKind::kMachine:
        if (l.has_a) result_.vram_mib = BoundedInt(l.a, 1e9, 0);
        if (l.has_b) result_.ram_mib = BoundedInt(l.b, 1e9, 0);
        break;
      case LineKind::kDevice: device_ = l.text; break;
      case LineKind::kVramState: vram_state_ = l.text; break;
      case LineKind::kTorchVersion: torch_ = l.text; break;
      case LineKind::kServerVersion: server_ = "ComfyUI " + l.text; break;
      case LineKind::kGotPrompt: ++queued_; break;
      case LineKind::kRequested:
        if (l.text.empty()) return Warn("'Requested to load' without a model name");
        Activity();
        // A new batch: the old one's leftovers were resident (or, in 2024
        // logs, loaded with no size line).
        if (loads_since_request_ > 0 || legacy_open_) FlushBatch();
        pending_.push_back({l.text, number_});
        loads_since_request_ = 0;
        break;
      case LineKind::kLoadingNewModels: {
        // 2024: the requests before the last were already resident; the last
        // is loaded now, fully unless "loading in lowvram mode" follows.
        Activity();
        std::optional<std::pair<std::string, int>> last;
        if (!pending_.empty()) last = pending_.back(), pending_.pop_back();
        FlushBatch();
        if (last) pending_.push_back(*last);
        legacy_open_ = true;
        break;
      }
      case LineKind::kLowvramMode: {
        Activity();
        // 2024: the budget is the part placed on the device; the size is unknown.
        LoadLine load{LoadMode::kPartial, l.a, false, l.a, ""};
        if (!l.has_a || l.a <= 0) return Warn("'loading in lowvram mode' without a budget; ignored");
        PairLoad(load, true);
        break;
      }
      case LineKind::kLoadedCompletely: {
        Activity();
        if (!l.has_a || MiBToBytes(l.a) <= 0) return Warn("a 'loaded completely' line without a size; ignored");
        PairLoad({LoadMode::kFull, l.a, true, l.a, ""}, false);
        break;
      }
      case LineKind::kLoadedPartially: {
        Activity();
        if (!l.has_a) return Warn("a 'loaded partially' line without the MB it loaded; ignored");
        const bool total_known = l.has_b;
        PairLoad({LoadMode::kPartial, l.a + (total_known ? l.b : 0), total_known, l.a, ""}, false);
        break;
      }
      case LineKind::kDynamic: {
        Activity();
        if (!l.has_a || MiBToBytes(l.a) <= 0) return Warn("a dynamic VRAM load without its staged size; ignored");
        PairLoad({LoadMode::kDynamic, l.a, true, 0, l.text}, false);
        break;
      }
      case LineKind::kUnloadedPartially: Activity(); Unload(l); break;
      case LineKind::kDiskRead: Activity(); ++diffusion_reads_; break;
      case LineKind::kProgress: Progress(l); break;
      case LineKind::kPromptExecuted: {
        if (!prompt_open_) BeginPrompt();  // everything came from the cache: no line but this one
        EndPrompt(l.has_a ? BoundedInt(l.a * 1e9, 1e18, -1) : -1);
        break;
      }
      case LineKind::kException:
        if (!pending_.empty() && loads_since_request_ == 0) {
          // The failure came before these loads: nothing was loaded.
          Warn(pending_.front().second, std::to_string(pending_.size()) + " request(s) cut off by the failure ('" +
                                            pending_.front().first + "' first): not loaded");
          pending_.clear();
          legacy_open_ = false;
        }
        if (prompt_open_) {
          failed_prompts_.insert(prompt_);
          Warn("prompt " + std::to_string(prompt_) + " failed (" + l.text + "); its time runs only to the failure");
        }
        break;
    }
  }

  // ----- prompts -----
  void Activity() {
    if (!prompt_open_) BeginPrompt();
  }
  void BeginPrompt() {
    ++prompt_;
    prompt_open_ = true;
    model_events_in_prompt_ = 0;
    used_in_prompt_.clear();
    last_model_.reset();
    bar_seconds_ = 0;
    last_bar_.reset();
    if (queued_ > 0) {
      --queued_;
    } else if (prompt_ == 1) {
      incomplete_first_ = true;
      Warn("prompt 1 began before the log did (no 'got prompt' before it): its measured time covers lines the "
           "log lacks");
    }
    TraceEvent e;
    e.type = EventType::kPromptBegin;
    e.prompt = prompt_;
    Emit(e);
  }
  void EndPrompt(Nanos measured) {
    FlushBatch();
    if (measured > 0 && model_events_in_prompt_ == 0) {
      // Only work no line describes (loading images, a cached graph): there is
      // nothing in it to simulate, and comparisons should leave it out.
      char what[160];
      std::snprintf(what, sizeof what,
                    "prompt %d: %.2f s measured with no model line in it (work the log does not describe); nothing "
                    "in it to simulate, so its time is not comparable",
                    prompt_, static_cast<double>(measured) / 1e9);
      Warn(what);
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
    TraceEvent e;
    e.type = EventType::kPromptEnd;
    e.prompt = prompt_;
    e.measured_wall_ns = measured;
    Emit(e);
    prompt_open_ = false;
    last_bar_.reset();  // the next prompt's bar may read the same
    if (measured > 0 && !(prompt_ == 1 && incomplete_first_))
      accounted_.push_back({prompt_, measured, bar_seconds_});
  }

  // ----- models -----
  Model* Find(const std::string& name) {
    for (Model& m : models_)
      if (m.name == name) return &m;
    return nullptr;
  }
  static bool SameSize(double a, double b) {
    return std::fabs(a - b) <= std::max(kSameSizeMiB, kSameSizeFraction * std::max(a, b));
  }
  // Whether `m` (of the requested class) can be the model a load of `load` brings.
  static bool Fits(const Model& m, const LoadLine& load) {
    if (load.exact && m.from == SizeFrom::kStated) return SameSize(m.mib, load.mib);
    if (load.exact) return load.mib + kSameSizeMiB >= m.mib || m.from == SizeFrom::kClassDefault;
    if (m.from == SizeFrom::kStated) return m.mib + kSameSizeMiB >= load.mib;
    return true;  // two lower bounds: nothing tells them apart
  }
  // A model of class `cls` for this load: a known one of the same size not yet
  // used in this prompt, else (a second model of the class, such as Wan 2.2's
  // second expert) a new one.
  Model& ModelFor(const std::string& cls, const LoadLine& load) {
    std::vector<Model*> fits;
    for (Model& m : models_)
      if (m.cls == cls && Fits(m, load)) fits.push_back(&m);
    // The same model again in one prompt is a second sampler pass on it,
    // unless more diffusion models were read from disk ("model_type" lines)
    // than have sampled so far, or the class already came as several models
    // of one size (Wan 2.2's two WAN21 experts).
    // A model unloaded to nothing since this prompt used it, asked for again
    // at its size: Wan 2.2's first expert made room for the second, which is
    // another model of the same class and size (no model_type line said so).
    const bool another = multi_instance_.count(cls) || diffusion_reads_ > static_cast<int>(sampled_.size());
    for (Model* m : fits)
      if (!used_in_prompt_.count(m->name) || !(another || m->emptied)) return *m;
    if (!fits.empty()) multi_instance_.insert(cls);
    // A model first seen by a load line no request named, now requested by
    // name at the same size: the same model, and it takes the name.
    if (cls != "unnamed" && load.exact)
      for (Model& m : models_)
        if (m.cls == "unnamed" && m.from == SizeFrom::kStated && SameSize(m.mib, load.mib)) {
          Rename(m, cls);
          return m;
        }
    Model m;
    m.cls = cls;
    m.name = NameFor(cls);
    m.mib = load.mib;
    m.from = load.exact ? SizeFrom::kStated : SizeFrom::kLowerBound;
    m.first_line = number_;
    models_.push_back(m);
    return models_.back();
  }
  // A model for a load line no request names: the known model of that size
  // (one on the device first), else a new one.
  Model& ModelBySize(const LoadLine& load) {
    Model* best = nullptr;
    for (Model& m : models_) {
      if (!load.cls.empty() && m.cls != load.cls) continue;
      // A partial load's figure is a lower bound: it fits a model known by
      // its size when that size holds it, and any model known only by a
      // lower bound (two bounds cannot tell models apart; the bound grows).
      const bool fits = load.exact ? (m.from == SizeFrom::kStated ? SameSize(m.mib, load.mib) : m.mib <= load.mib)
                                   : (m.from != SizeFrom::kStated || m.mib + kSameSizeMiB >= load.mib);
      if (!fits) continue;
      if (!best || (m.device_mib > 0 && best->device_mib <= 0)) best = &m;
    }
    if (best) return *best;
    return ModelFor(load.cls.empty() ? "unnamed" : load.cls, load);
  }
  // The name of the next model of class `cls`: the class, then "cls#2"...
  std::string NameFor(const std::string& cls) const {
    int same_class = 0;
    for (const Model& m : models_) same_class += m.cls == cls;
    return same_class == 0 ? cls : cls + "#" + std::to_string(same_class + 1);
  }
  // Gives `m` class `cls` and a name of it, everywhere it was named so far.
  void Rename(Model& m, const std::string& cls) {
    const std::string from = m.name;
    const std::string to = NameFor(cls);
    for (TraceEvent& e : result_.trace.events) {
      if (e.model == from) e.model = to;
      for (std::string& n : e.models)
        if (n == from) n = to;
    }
    auto rename_in = [&](auto& set) {
      if (set.erase(from)) set.insert(to);
    };
    rename_in(used_in_prompt_);
    rename_in(sampled_);
    if (auto h = handles_.find(from); h != handles_.end()) {
      const int n = h->second;
      handles_.erase(h);
      handles_[to] += n;
    }
    if (last_model_ == from) last_model_ = to;
    if (last_sampled_ == from) last_sampled_ = to;
    Warn(m.first_line, "the load line taken as 'unnamed' was '" + to + "': a later request of the same size names it");
    m.cls = cls;
    m.name = to;
  }
  void Learn(Model& m, const LoadLine& load) {
    if (load.exact && m.from != SizeFrom::kStated) {
      m.mib = load.mib;  // a stated size replaces a lower bound or a class default
      m.from = SizeFrom::kStated;
    } else if (!load.exact && m.from == SizeFrom::kLowerBound) {
      m.mib = std::max(m.mib, load.mib);
    }
  }

  // ----- loads -----
  // Pairs a load line with the pending request it answers: the one whose class
  // has a model of this size, else one whose class has no model on the device,
  // else the oldest. `lowvram_2024`: "loading in lowvram mode" answers the last.
  void PairLoad(const LoadLine& load, bool lowvram_2024) {
    ++loads_since_request_;
    std::optional<std::size_t> pick;
    auto known_fit = [&](const std::string& cls) {
      for (const Model& m : models_)
        if (m.cls == cls && m.from == SizeFrom::kStated && load.exact && SameSize(m.mib, load.mib)) return true;
      return false;
    };
    auto resident = [&](const std::string& cls) {
      for (const Model& m : models_)
        if (m.cls == cls && m.device_mib > 0) return true;
      return false;
    };
    for (std::size_t i = 0; i < pending_.size() && !pick; ++i)
      if (!load.cls.empty() ? pending_[i].first == load.cls : known_fit(pending_[i].first)) pick = i;
    if (lowvram_2024 && !pick && !pending_.empty()) pick = pending_.size() - 1;
    // Several requests, fewer load lines (the others were resident): the
    // request whose class is typically this size, when only one is close.
    if (!pick && load.exact && load.cls.empty() && pending_.size() > 1) {
      std::vector<std::size_t> close;
      for (std::size_t i = 0; i < pending_.size(); ++i) {
        const double typical = TypicalClassMiB(pending_[i].first);
        if (typical > 0 && std::fabs(typical - load.mib) <= kTypicalSizeFraction * load.mib) close.push_back(i);
      }
      if (close.size() == 1) pick = close[0];
    }
    for (std::size_t i = 0; i < pending_.size() && !pick && load.cls.empty(); ++i)
      if (!resident(pending_[i].first)) pick = i;
    // A line that names its model otherwise than its request did still
    // answers the oldest request; the line's name wins.
    if (!pick && !pending_.empty()) pick = 0;
    Model* m = nullptr;
    if (pick) {
      const std::string cls = load.cls.empty() ? pending_[*pick].first : load.cls;
      pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(*pick));
      m = &ModelFor(cls, load);
      ++paired_by_request_;
    } else {
      m = &ModelBySize(load);
      ++paired_by_size_;
      if (load.cls.empty())
        Warn("a load line with no 'Requested to load' before it: taken as '" + m->name + "' by its size");
    }
    Learn(*m, load);
    EmitLoad(*m, load.mode, load.device_mib, pick ? std::vector<std::string>{} : std::vector<std::string>{"model"});
    m->device_mib = load.mode == LoadMode::kDynamic ? 0 : load.device_mib;
  }
  // Requests no load line answered: the model was on the device already (or,
  // in 2024 logs, loaded without a size line). They still take a handle.
  void FlushBatch() {
    for (const auto& [cls, line] : pending_) {
      Model* m = nullptr;
      for (Model& k : models_)
        if (k.cls == cls && !used_in_prompt_.count(k.name) && (!m || k.device_mib > m->device_mib)) m = &k;
      for (Model& k : models_)
        if (!m && k.cls == cls) m = &k;
      if (!m) {
        double mib = TypicalClassMiB(cls);
        if (mib <= 0) {
          mib = kUnknownClassMiB;
          Warn(line, "no size for '" + cls + "' anywhere in the log and none typical of its class: " +
                         std::to_string(static_cast<int>(mib)) + " MB assumed");
        }
        LoadLine guess{LoadMode::kFull, mib, false, mib, cls};
        m = &ModelFor(cls, guess);
        m->from = SizeFrom::kClassDefault;
      }
      const bool on_device = m->device_mib > 0;
      const std::optional<std::string> current = last_model_;
      EmitLoad(*m, on_device ? m->last_mode : LoadMode::kFull,
               m->last_mode == LoadMode::kPartial ? m->device_mib : m->mib, {"mode"});
      // Beside a loaded model (a text encoder already resident while the
      // sampler's model loads), a resident one is not what the next bar samples.
      if (loads_since_request_ > 0 && current) last_model_ = current;
      if (!on_device) m->device_mib = m->mib;
      ++already_loaded_;
    }
    pending_.clear();
    loads_since_request_ = 0;
    legacy_open_ = false;
  }
  void EmitLoad(Model& m, LoadMode mode, double device_mib, std::vector<std::string> inferred) {
    TraceEvent e;
    e.type = EventType::kLoad;
    e.model = m.name;
    e.mode = mode;
    if (mode == LoadMode::kPartial) e.device_bytes = MiBToBytes(device_mib);
    e.inferred = std::move(inferred);
    Emit(e);
    ++handles_[m.name];
    m.last_mode = mode;
    m.last_load = ++load_tick_;
    m.emptied = false;
    used_in_prompt_.insert(m.name);
    last_model_ = m.name;
    last_bar_.reset();
  }

  // "Unloaded partially: F MB freed, R MB remains loaded": the model that had
  // F + R on the device.
  void Unload(const LogLine& l) {
    if (!l.has_a || !l.has_b) return Warn("an 'Unloaded partially' line without its freed and remaining MB; ignored");
    Model* m = nullptr;
    for (Model& k : models_)  // of several that match, the least recently loaded
      if (k.device_mib > 0 && SameSize(k.device_mib, l.a + l.b) && (!m || k.last_load < m->last_load)) m = &k;
    for (Model& k : models_)
      if (!m && k.device_mib >= l.a && k.device_mib > 0 && (!m || k.device_mib > m->device_mib)) m = &k;
    if (!m) return Warn("'Unloaded partially' of " + std::to_string(l.a + l.b) + " MB matches no model on the device; ignored");
    TraceEvent e;
    e.type = EventType::kUnload;
    e.model = m->name;
    e.freed_bytes = MiBToBytes(l.a);
    e.remaining_bytes = MiBToBytes(l.b);
    e.reason = "free_memory";
    if (!SameSize(m->device_mib, l.a + l.b)) e.inferred = {"model"};
    Emit(e);
    m->device_mib = l.b;
    m->emptied = l.b < kSameSizeMiB;
    ++unloads_;
  }

  // A finished pass's length. tqdm prints the elapsed time rounded down to
  // whole seconds ("00:01" for 1.65 s), which loses up to a second per pass:
  // steps / rate is finer, kept within [elapsed, elapsed + 1). With no rate
  // printed, the middle of that second.
  static double PassSeconds(const LogLine& l) {
    if (l.seconds_per_it <= 0) return l.elapsed_s + 0.5;
    const double by_rate = l.seconds_per_it * static_cast<double>(l.total);
    return std::clamp(by_rate, l.elapsed_s, l.elapsed_s + 0.999);
  }

  // Finished bars in a row (noise between them aside). tqdm prints a bar
  // again when it closes, in logs that keep its every refresh: at the last
  // update and on close, the second with the same elapsed time or a later one
  // (the sampler finished after that update). A run is read so when it parses
  // whole as such pairs; else each bar is its own pass (a console that
  // overwrote its bars shows one line per pass, however alike they read).
  void FlushBars() {
    if (bar_run_.empty()) return;
    bool doubled = bar_run_.size() % 2 == 0;
    for (std::size_t i = 0; doubled && i < bar_run_.size(); i += 2) {
      const LogLine& a = bar_run_[i].first;
      const LogLine& b = bar_run_[i + 1].first;
      doubled = a.total == b.total && b.elapsed_s >= a.elapsed_s;
    }
    bool counted = false;
    for (std::size_t i = 0; i < bar_run_.size(); ++i) {
      number_ = bar_run_[i].second;
      ++seen_[LineKind::kProgress];
      if (doubled && i % 2 == 1) {
        ++doubled_bars_;
        if (counted) Reprint(bar_run_[i].first);
      } else {
        counted = Progress(bar_run_[i].first);
      }
    }
    bar_run_.clear();
  }
  // The close-print of the pass just counted: the whole pass's average rate
  // and its final elapsed time, the better figures for its length.
  void Reprint(const LogLine& l) {
    if (!last_compute_ || (l.seconds_per_it <= 0 && l.elapsed_s == last_bar_->second)) return;
    last_bar_->second = l.elapsed_s;
    TraceEvent& e = result_.trace.events[*last_compute_];
    const double before = static_cast<double>(e.step_ns) * e.steps / 1e9;
    const double now = PassSeconds(l);
    e.step_ns = std::llround(now * 1e9 / e.steps);
    bar_seconds_ += now - before;
  }

  // A finished sampler bar: `total` steps in `elapsed` on the model loaded
  // last. Whether it became a compute.
  bool Progress(const LogLine& l) {
    if (l.count != l.total) return false;
    if (l.labelled) return ++labelled_bars_, false;
    if (l.elapsed_s < 0) {
      Warn("a finished progress bar without a readable elapsed time (or over a year long); ignored");
      return false;
    }
    Activity();
    FlushBatch();
    if (!last_model_) last_model_ = last_sampled_;
    if (!last_model_) {
      // The model was loaded before the log began: the prompt's time holds a
      // pass the trace cannot replay.
      Warn("prompt " + std::to_string(prompt_) + ": a sampler pass on a model no line loaded (before the log began); "
           "ignored, and the prompt's time is not comparable");
      return false;
    }
    Model& m = *Find(*last_model_);
    std::vector<std::string> inferred{"activation_bytes"};
    if (!used_in_prompt_.count(m.name)) {
      // Nothing in this prompt loaded it: it stayed on the device, silently.
      EmitLoad(m, m.last_mode, m.last_mode == LoadMode::kPartial ? m.device_mib : m.mib, {"mode"});
      inferred.push_back("models");
    }
    TraceEvent e;
    e.type = EventType::kCompute;
    e.models = {m.name};
    e.steps = static_cast<int>(l.total);
    const double pass_s = PassSeconds(l);
    e.step_ns = std::llround(pass_s * 1e9 / e.steps);
    if (l.seconds_per_it <= 0) inferred.push_back("step_ns");  // half a second added to a whole-second figure
    // A bar's time per step holds the streaming of a partially loaded model.
    e.step_includes_streaming = true;
    e.inferred = inferred;
    Emit(e);
    last_compute_ = result_.trace.events.size() - 1;
    last_bar_ = {l.total, l.elapsed_s};
    last_sampled_ = m.name;
    sampled_.insert(m.name);
    bar_seconds_ += pass_s;
    ++bars_;
    return true;
  }

  // ----- results -----
  void BuildHeader() {
    traces::Trace& t = result_.trace;
    t.header.name = "imported-comfyui-log";
    t.header.source = "imported:comfyui-log";
    t.header.description = "imported from " + origin_;
    if (result_.ram_mib <= 0 || result_.vram_mib < 0) return;
    traces::MachineRecord m;
    m.ram = result_.ram_mib << 20;
    // Apple's MPS ("SHARED" state, VRAM = RAM) is one pool.
    m.unified = vram_state_ == "SHARED" || device_ == "mps";
    if (!m.unified) {
      if (result_.vram_mib <= 0) return;
      m.vram = result_.vram_mib << 20;
    }
    m.device = device_;
    m.torch = torch_;
    m.server = server_;
    if (vram_state_ == "LOW_VRAM") m.flags.push_back("--lowvram");
    if (vram_state_ == "NO_VRAM") m.flags.push_back("--novram");
    if (vram_state_ == "HIGH_VRAM") m.flags.push_back("--highvram");
    t.header.machine = m;
  }
  // DirectML states a placeholder ("Total VRAM 1024 MB" whatever the card).
  // When one prompt of a DirectML log loads more models in full onto the
  // device than the stated VRAM could hold beside ComfyUI's own reserve, the
  // figure cannot be the card's: take the least VRAM that fits what the log
  // shows, rounded up to a GiB, and say so. Other backends state the card.
  void RaiseAnImpossibleVram() {
    auto& machine = result_.trace.header.machine;
    if (!machine || machine->unified || machine->device.find("privateuseone") == std::string::npos) return;
    constexpr double kComfyReserveMiB = 1228;  // minimum_inference_memory 0.8 GiB + 400 MiB extra reserved
    double need = 0, in_prompt = 0;
    std::string biggest;
    double biggest_mib = 0;
    std::set<std::string> counted;  // each model once per prompt
    for (const TraceEvent& e : result_.trace.events) {
      if (e.type == EventType::kPromptBegin) in_prompt = 0, counted.clear();
      if (e.type != EventType::kLoad || e.mode != LoadMode::kFull || !counted.insert(e.model).second) continue;
      const double mib = Find(e.model)->mib;
      in_prompt += mib;
      need = std::max(need, in_prompt);
      if (mib > biggest_mib) biggest_mib = mib, biggest = e.model;
    }
    const double stated = static_cast<double>(machine->vram >> 20);
    if (need + kComfyReserveMiB <= stated) return;
    const std::int64_t raised = (static_cast<std::int64_t>(need + kComfyReserveMiB) / 1024 + 1) << 30;
    const std::string what = "the log states " + std::to_string(machine->vram >> 20) + " MB of VRAM, yet one prompt loads " +
                             std::to_string(static_cast<int>(need)) + " MB in full onto the device (the largest, '" +
                             biggest + "', " + std::to_string(static_cast<int>(biggest_mib)) +
                             " MB): the stated figure is a placeholder (DirectML prints one); VRAM is taken as " +
                             std::to_string(raised >> 30) + " GiB, the least that fits";
    Warn(1, what);
    result_.trace.header.description += "; inferred: VRAM " + std::to_string(raised >> 30) + " GiB, not the stated " +
                                        std::to_string(machine->vram >> 20) + " MB";
    machine->vram = raised;
  }
  std::string NothingFound() const {
    auto n = [&](LineKind k) {
      auto it = seen_.find(k);
      return it == seen_.end() ? 0 : it->second;
    };
    const int loads = n(LineKind::kLoadedCompletely) + n(LineKind::kLoadedPartially) + n(LineKind::kDynamic) +
                      n(LineKind::kLowvramMode);
    std::ostringstream s;
    s << origin_ << ": no model load could be read: " << n(LineKind::kRequested) << " 'Requested to load', " << loads
      << " load lines ('loaded completely', 'loaded partially', dynamic VRAM, lowvram), " << n(LineKind::kProgress)
      << " progress bars, " << n(LineKind::kPromptExecuted) << " 'Prompt executed'";
    if (loads > 0) s << " (the load lines carried no usable size)";
    return s.str();
  }
  void Summarize(int stated, int lower, int defaulted) {
    auto& s = result_.summary;
    s.push_back(std::to_string(models_.size()) + " models: " + std::to_string(stated) + " sized by a load line, " +
                std::to_string(lower) + " only a lower bound (a partial load), " + std::to_string(defaulted) +
                " a typical size for their class (no line states one)");
    s.push_back(std::to_string(paired_by_request_) + " load lines paired with their request, " +
                std::to_string(paired_by_size_) + " without one (matched by size), " +
                std::to_string(already_loaded_) + " requests with no load line (already on the device, or a 2024 full load)");
    s.push_back(std::to_string(unloads_) + " partial unloads, " + std::to_string(bars_) + " sampler passes (" +
                std::to_string(doubled_bars_) + " doubled final bars counted once, " + std::to_string(labelled_bars_) +
                " other tools' bars ignored)");
    s.push_back(std::to_string(prompt_) + " prompts" +
                (failed_prompts_.empty() ? "" : ", " + std::to_string(failed_prompts_.size()) + " failed"));
    for (const auto& [prompt, measured, bars] : accounted_) {
      char line[200];
      const double total = static_cast<double>(measured) / 1e9;
      std::snprintf(line, sizeof line,
                    "prompt %d: %.2f s measured, %.2f s in sampler bars, %.2f s (%.0f %%) in no line's account "
                    "(loads, text encoders, VAE, warm-up)",
                    prompt, total, bars, std::max(0.0, total - bars), 100.0 * std::max(0.0, total - bars) / total);
      s.push_back(line);
    }
    s.push_back("inferred, not read (marked 'inferred' in the trace): tensor sizes, activation sizes, and the "
                "fields listed above");
  }
  void Warn(const std::string& what) { Warn(number_, what); }
  void Warn(int line, const std::string& what) {
    result_.warnings.push_back(origin_ + ":" + std::to_string(line) + ": " + what);
  }
  void Emit(TraceEvent e) {
    e.line = number_;
    if (e.type == EventType::kLoad || e.type == EventType::kCompute) ++model_events_in_prompt_;
    result_.trace.events.push_back(std::move(e));
  }

  std::string origin_;
  ImportResult result_;
  int number_ = 0;
  int model_events_in_prompt_ = 0;
  std::vector<std::pair<LogLine, int>> bar_run_;  // finished bars in a row, not yet read (FlushBars)
  std::map<LineKind, int> seen_;
  std::string device_, vram_state_, torch_, server_;
  int prompt_ = 0, queued_ = 0;
  bool prompt_open_ = false;
  bool incomplete_first_ = false;  // the log starts inside prompt 1
  std::deque<std::pair<std::string, int>> pending_;  // requests of this batch: class, line
  int loads_since_request_ = 0;
  bool legacy_open_ = false;  // a 2024 "Loading N new model" whose request no line answers yet
  int diffusion_reads_ = 0;
  int load_tick_ = 0;  // "model_type" lines: a diffusion model read from its file
  std::vector<Model> models_;  // a vector: names are few, and order is first use
  std::set<std::string> used_in_prompt_, multi_instance_, sampled_;
  std::map<std::string, int> handles_;
  std::optional<std::string> last_model_, last_sampled_;
  std::optional<std::pair<long long, double>> last_bar_;
  std::optional<std::size_t> last_compute_;  // index in the trace's events of the last pass's compute
  std::optional<std::pair<std::string, double>> last_dynamic_;  // total, elapsed of the last counted bar
  double bar_seconds_ = 0;
  std::set<int> failed_prompts_;
  std::vector<std::tuple<int, Nanos, double>> accounted_;
  int paired_by_request_ = 0, paired_by_size_ = 0, already_loaded_ = 0;
  int unloads_ = 0, bars_ = 0, doubled_bars_ = 0, labelled_bars_ = 0;
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
