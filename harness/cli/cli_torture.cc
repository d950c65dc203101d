// `residency torture`: random traces x profiles x policies with every check
// on, for as long as asked (a VOPR for this domain). Each case is drawn from
// the property tests' generators with its own seed; a failing case is shrunk
// greedily through the generator's shrink tree and written as a regression
// case (trace, profile, policy) with the command that replays it.
#include <chrono>
#include <cstdio>
#include <memory>

#include "harness/cli/cli.h"
#include "harness/proof/case_check.h"

namespace residency::cli {
namespace {

struct TortureArgs {
  double seconds = 10;
  std::uint64_t seed = 0;  // 0: from the clock
  int size = 100;          // RapidCheck size: bigger, longer traces
  std::string out = "torture-failures";
};

// Walks the shrink tree: take the first smaller case that still fails.
proof::Case Shrink(rc::Shrinkable<proof::Case> failing, std::uint64_t seed, int budget) {
  bool progress = true;
  while (progress && budget-- > 0) {
    progress = false;
    auto shrinks = failing.shrinks();
    while (auto next = shrinks.next()) {
      if (!proof::CheckCase(next->value(), seed).problems.empty()) {
        failing = std::move(*next);
        progress = true;
        break;
      }
    }
  }
  return failing.value();
}

int RunTorture(const TortureArgs& a) {
  using Clock = std::chrono::steady_clock;
  const std::uint64_t base = a.seed ? a.seed
                                    : static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
  std::fprintf(stderr, "torture: base seed %llu, %.0f s, size %d\n",
               static_cast<unsigned long long>(base), a.seconds, a.size);
  const auto t0 = Clock::now();
  const auto gen = proof::GenCase();
  std::uint64_t cases = 0;
  do {
    const std::uint64_t seed = base + cases++;
    auto shrinkable = gen(rc::Random(seed), a.size);
    const proof::Case c = shrinkable.value();
    const proof::CaseResult r = proof::CheckCase(c, seed);
    if (!r.problems.empty()) {
      std::printf("VIOLATION at case seed %llu (%s):\n", static_cast<unsigned long long>(seed),
                  proof::Describe(c).c_str());
      for (const std::string& p : r.problems) std::printf("  %s\n", p.c_str());
      const proof::Case small = Shrink(shrinkable, seed, 500);
      const std::string name = "torture-" + std::to_string(seed);
      Status s = proof::WriteCase(a.out, name, small);
      if (!s.ok()) return Fail(s);
      std::printf("shrunk to %zu events, written to %s/%s.{jsonl,profile.json,policy.json}\n",
                  small.trace.events.size(), a.out.c_str(), name.c_str());
      std::printf("reproduce: residency torture --seed %llu --seconds 0\n",
                  static_cast<unsigned long long>(seed));
      std::printf("add it to the corpus: cp %s/%s.* traces/regressions/\n", a.out.c_str(), name.c_str());
      return 1;
    }
    if (cases % 200 == 0)
      std::fprintf(stderr, "  %llu cases clean\n", static_cast<unsigned long long>(cases));
  } while (std::chrono::duration<double>(Clock::now() - t0).count() < a.seconds);
  std::printf("torture: %llu cases, no violation (base seed %llu)\n", static_cast<unsigned long long>(cases),
              static_cast<unsigned long long>(base));
  return 0;
}

}  // namespace

Subcommand AddTorture(CLI::App& app) {
  auto a = std::make_shared<TortureArgs>();
  CLI::App* c = app.add_subcommand("torture", "Random traces x profiles x policies with every invariant on");
  c->add_option("--seconds", a->seconds, "How long to run (0: one case)")->capture_default_str()->check(CLI::NonNegativeNumber);
  c->add_option("--seed", a->seed, "First case's seed (cases use seed, seed+1, ...)");
  c->add_option("--size", a->size, "Generator size (longer traces when larger)")->capture_default_str()->check(CLI::Range(1, 1000));
  c->add_option("--out", a->out, "Where shrunk failing cases are written")->capture_default_str();
  return {c, [a] { return RunTorture(*a); }};
}

}  // namespace residency::cli
