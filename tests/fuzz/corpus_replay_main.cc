// Runs a libFuzzer target without libFuzzer (gcc builds, the normal test
// suite): every seed in the corpus directories, then a fixed number of
// deterministic mutations of them (bit flips, truncations, splices, byte
// insertions). Usage: TARGET_replay [--mutations N] DIR...
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "runtime/base/splitmix64.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

void Run(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
}

std::string Mutate(const std::string& seed, const std::vector<std::string>& all, std::uint64_t& rng) {
  std::string s = seed;
  const int edits = 1 + static_cast<int>(residency::SplitMix64(rng) % 4);
  for (int e = 0; e < edits; ++e) {
    const std::uint64_t r = residency::SplitMix64(rng);
    const std::size_t at = s.empty() ? 0 : residency::SplitMix64(rng) % s.size();
    switch (r % 5) {
      case 0: if (!s.empty()) s[at] ^= static_cast<char>(1u << (r >> 8) % 8); break;
      case 1: s.resize(at); break;
      case 2: s.insert(at, 1, static_cast<char>(r >> 16)); break;
      case 3: { const std::string& other = all[(r >> 20) % all.size()];
                s = s.substr(0, at) + other.substr(std::min(other.size(), at)); break; }
      case 4: if (!s.empty()) s[at] = "{}[]\":,0123456789-e.\n "[(r >> 24) % 22]; break;
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  long mutations = 2000;
  std::vector<std::string> seeds;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--mutations") == 0 && i + 1 < argc) { mutations = std::atol(argv[++i]); continue; }
    for (const auto& entry : std::filesystem::directory_iterator(argv[i])) {
      std::ifstream in(entry.path(), std::ios::binary);
      seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  if (seeds.empty()) { std::fprintf(stderr, "no seeds found\n"); return 2; }
  for (const std::string& s : seeds) Run(s);
  std::uint64_t rng = 12345;
  for (long i = 0; i < mutations; ++i) Run(Mutate(seeds[i % seeds.size()], seeds, rng));
  std::printf("%zu seeds and %ld mutations ran clean\n", seeds.size(), mutations);
  return 0;
}
