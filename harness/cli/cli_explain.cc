// `residency explain TRACE --profile P --policy X`: why is my workflow slow on
// this machine? (harness/report/explain.h)
#include <cstdio>
#include <iostream>
#include <memory>

#include "harness/cli/cli.h"
#include "harness/report/explain.h"
#include "harness/report/replay.h"
#include "harness/common/progress_line.h"
#include "traces/bundled.h"

namespace residency::cli {

Subcommand AddExplain(CLI::App& app) {
  auto req = std::make_shared<harness::ReplayRequest>();
  CLI::App* c = app.add_subcommand("explain", "Where a trace's time goes per prompt, and which policy would help most");
  c->add_option("trace", req->trace_path, "Trace file (JSON Lines)")->required();
  c->add_option("--profile", req->profile, "Bundled profile name or profile JSON file")->capture_default_str();
  c->add_option("--policy", req->policy,
                "Bundled policy name or policy JSON file; 'auto': the server's own for a captured trace, "
                "ram-lru otherwise")
      ->capture_default_str();
  c->add_option("--seed", req->seed, "Simulator seed")->capture_default_str();
  return {c, [req] {
            auto r = harness::Replay(*req);
            if (!r.ok()) return Fail(r.status());
            std::vector<harness::Alternative> alternatives;
            const std::vector<traces::BundledEntry> policies = traces::ListBundled("policies");
            // One replay per bundled policy: a bar on a terminal, nothing in a pipe.
            sweep::ProgressLine bar(stderr, "replaying under each bundled policy", sweep::OffTerminal::kNothing);
            for (const traces::BundledEntry& e : policies) {
              bar.Update(alternatives.size(), policies.size(), e.name);
              harness::ReplayRequest other = *req;
              other.policy = e.path;
              other.record_timeline = false;  // only the figures are compared
              auto alt = harness::Replay(other);
              if (!alt.ok()) return Fail(alt.status());
              alternatives.push_back({e.name, std::move(alt).value()});
            }
            bar.Update(policies.size(), policies.size(), "");
            bar.Finish();
            std::cout << harness::FormatExplanation(*r, harness::ExplainPrompts(*r), std::move(alternatives));
            return r->violations.empty() ? 0 : 1;
          }};
}

}  // namespace residency::cli
