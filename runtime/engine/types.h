// Vocabulary of the residency engine: units, identifiers, tiers and the
// enumerations that policies and reports share. Standard library only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/base/units.h"

namespace residency::engine {

// The base units (runtime/base/units.h), under the engine's names too.
using residency::Bytes;
using residency::kGiB;
using residency::kKiB;
using residency::kMiB;
using residency::kNanosPerSecond;
using residency::Nanos;

using ModelId = std::uint32_t;
using FileId = std::uint32_t;
using BufferId = std::uint64_t;
using CommandId = std::uint64_t;
using OpId = std::uint64_t;

// Where a model's bytes can live. On unified-memory machines HOST, PINNED and
// DEVICE draw from one physical pool.
enum class Tier : std::uint8_t { kDisk, kHost, kPinned, kDevice };

// How bytes get from the file to the device.
enum class LoaderKind : std::uint8_t {
  kMmapPageable,    // mmap + single-threaded faults + pageable copy per tensor
  kReadInto,        // sequential read() per tensor into pageable RAM, no mmap
  kThreadedPinned,  // chunked multi-threaded reads into pinned staging/buffers
};

// What happens to a model's device bytes when VRAM is needed elsewhere.
enum class EvictionKind : std::uint8_t {
  kDrop,          // free; reload from the file later
  kRamLru,        // keep a host copy in a bounded RAM cache, LRU
  kRamCostAware,  // keep a host copy, evict by GreedyDual-Size reload cost
  kSpill,         // like kRamLru; dirty (patched) weights go to a scratch file
                  // when the RAM cache cannot hold them
};

enum class LoadMode : std::uint8_t { kFull, kPartial, kDynamic };

// How a policy treats the load mode a trace asks for. A server's loading
// regime is a setting (ComfyUI's dynamic VRAM on or off, --novram), so a
// policy may replay a trace under another regime than the one it was
// captured under.
enum class LoadModeRule : std::uint8_t {
  kAsTraced,  // each load as the trace asks
  kDynamic,   // every load dynamic (ComfyUI's dynamic VRAM: --lowvram's amounts are ignored)
  kClassic,   // a dynamic load becomes full when it fits, else partial to what fits
  kNoVram,    // every load partial with nothing resident: all weights stream (--novram)
};

// How a captured server ended a prompt: a failed or interrupted prompt's
// measured time is not a finished prompt's.
enum class PromptOutcome : std::uint8_t { kOk, kFailed, kInterrupted };

// Why bytes left a tier; reported per eviction.
enum class EvictReason : std::uint8_t {
  kDevicePressure,  // VRAM needed for another model or activations
  kRamCacheBudget,  // the RAM cache exceeded its budget
  kHostPressure,    // the OS reported low free RAM
  kPinBudget,       // the pin budget needed room (bytes unpinned, kept)
  kDeleted,         // the model was deleted
  kNotCached,       // policy keeps no host copy after loading
  kPromptEnd,       // the policy unloads idle models when a prompt ends (--disable-smart-memory)
};

// "1234 MiB": how the engine and the simulator name byte counts in messages.
std::string FormatMiB(Bytes bytes);

std::string_view ToString(Tier tier);
std::string_view ToString(LoaderKind kind);
std::string_view ToString(EvictionKind kind);
std::string_view ToString(LoadMode mode);
std::string_view ToString(LoadModeRule rule);
std::string_view ToString(PromptOutcome outcome);
std::string_view ToString(EvictReason reason);

// Parsers for the names above; return false on an unknown name.
bool ParseLoaderKind(std::string_view name, LoaderKind& out);
bool ParseEvictionKind(std::string_view name, EvictionKind& out);
bool ParseLoadMode(std::string_view name, LoadMode& out);
bool ParseLoadModeRule(std::string_view name, LoadModeRule& out);
bool ParsePromptOutcome(std::string_view name, PromptOutcome& out);

}  // namespace residency::engine
