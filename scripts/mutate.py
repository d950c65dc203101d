#!/usr/bin/env python3
"""make mutate: one-line mutants of the engine, the safetensors checks and the
executor, each built and tested in a copy of the tree; prints killed / alive
and the score. A mutant is killed when the build's tests fail (ctest exits
non-zero or passes its time limit); one that does not compile is 'invalid'.

usage: scripts/mutate.py [--tests REGEX] [--targets T,T] [--only N,N] [--timeout S] [--keep DIR]

--tests narrows ctest (default: the whole suite, as `make test` runs it);
--targets builds only those CMake targets after each mutation (the test
binaries --tests needs; a quick first pass, survivors then run in full);
--only runs the listed mutant numbers. The copy lives in --keep (default: a
temporary folder); its build is reused between runs when --keep is given.
The last full result goes in docs/BENCHMARKS.md.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

E = "runtime/engine/"
# (file, exact line text, replacement, what it breaks)
MUTANTS = [
    # Budgets.
    (E + "policy.cc", "b.host_limit_bytes = std::max<Bytes>(0, usable_ram - p.host_headroom_bytes);",
     "b.host_limit_bytes = std::max<Bytes>(0, usable_ram);", "host limit ignores the headroom"),
    (E + "policy.cc", "b.device_limit_bytes = std::max<Bytes>(0, m.device_bytes - p.device_reserve_bytes);",
     "b.device_limit_bytes = std::max<Bytes>(0, m.device_bytes);", "device limit ignores the reserve"),
    (E + "policy.cc", "b.pin_budget_bytes = std::min(b.pin_budget_bytes, b.host_limit_bytes);",
     ";", "pin budget not capped by the host limit"),
    (E + "policy.cc", "b.ram_cache_bytes = std::min(b.ram_cache_bytes, b.host_limit_bytes);",
     ";", "RAM cache not capped by the host limit"),
    (E + "policy.cc", "b.pin_budget_bytes = std::max(ram * 4 / 10, std::min(ram * 9 / 10, ram - 4 * kGiB));",
     "b.pin_budget_bytes = std::max(ram * 5 / 10, std::min(ram * 9 / 10, ram - 4 * kGiB));", "auto pin budget 50 %"),
    (E + "policy.cc", "b.ram_cache_bytes = std::clamp(m.ram_bytes * 3 / 4, 12 * kGiB, 96 * kGiB);",
     "b.ram_cache_bytes = std::clamp(m.ram_bytes * 7 / 8, 12 * kGiB, 96 * kGiB);", "auto RAM cache 7/8"),
    # Pin accounting and page-lock hysteresis.
    (E + "engine_evict.cc", "auto pinned = [this] { return acct_.pinned_bytes + pending_.pin_alloc - pending_.pin_free; };",
     "auto pinned = [this] { return acct_.pinned_bytes - pending_.pin_free; };", "pin room ignores staged pins"),
    (E + "engine_evict.cc", "if (needed > budgets_.pin_budget_bytes) return false;", ";",
     "a pin larger than the whole budget is tried"),
    (E + "engine_evict.cc", "if (pinned() - gain + needed > budgets_.pin_budget_bytes) return false;", ";",
     "pin room granted without enough unpinned"),
    (E + "engine_evict.cc", "policy_.pin_hysteresis_bytes);", "Bytes{0});", "no page-lock hysteresis"),
    (E + "engine.cc", "acct_.pinned_bytes += b.bytes;", "acct_.pinned_bytes += b.bytes / 2;", "pin counts half"),
    (E + "engine.cc", "acct_.pageable_bytes += b.bytes;\n      break;", "break;", "unpin loses the pageable bytes"),
    # Eviction order and the RAM cache.
    (E + "engine_evict.cc", "return models_.at(a).last_use < models_.at(b).last_use;",
     "return models_.at(a).last_use > models_.at(b).last_use;", "unpin most recently used first"),
    (E + "engine_evict.cc", "if (cached <= budgets_.ram_cache_bytes) return;", "return;", "RAM cache never trimmed"),
    (E + "engine_evict.cc", "if (m.host_dirty) continue;", ";", "host pressure drops dirty copies"),
    (E + "engine_evict.cc", "if (b == buffers_.end() || b->second.inflight > 0) continue;",
     "if (b == buffers_.end()) continue;", "host pressure frees a buffer in flight"),
    (E + "engine_evict.cc", "if (HeldByStagedCommand(m.host_buffer)) continue;", ";",
     "host pressure frees a buffer a staged command holds"),
    (E + "engine_evict.cc", "if (policy_.eviction == EvictionKind::kRamCostAware) gds_inflation_ = m.gds_priority;", ";",
     "GreedyDual-Size never inflates"),
    # The finalizer.
    (E + "engine_ops.cc", "if (!m.deleted || m.handles > 0 || m.finalizer_issued) return;",
     "if (!m.deleted || m.finalizer_issued) return;", "finalizer under a live handle"),
    (E + "engine_ops.cc", "  Batch(std::move(frees));\n  Batch({Make(CommandKind::kRunFinalizer, id)});",
     "  Batch({Make(CommandKind::kRunFinalizer, id)});\n  Batch(std::move(frees));", "finalizer before the frees"),
    (E + "engine.cc", "++m->finalizer_runs;", "m->finalizer_runs += 2;", "a finalizer counted twice"),
    (E + "engine_ops.cc", "if (!m.deleted || m.handles > 0 || m.finalizer_issued) return;\n  m.finalizer_issued = true;",
     "if (!m.deleted || m.handles > 0) return;\n  m.finalizer_issued = true;", "finalizer issued more than once"),
    # Compute and failure handling.
    (E + "engine_evict.cc", "    if (task_ && (task_->op.model == id || task_->op.patch_model == id ||",
     "    if (false && (task_->op.model == id || task_->op.patch_model == id ||",
     "host pressure frees the running op's own model"),
    (E + "engine.cc", "        releases.push_back(std::move(c));\n        continue;", "        continue;",
     "a failed op drops the releases it decided"),
    (E + "engine.cc", "if (!completion.status.ok() && t.status.ok()) {", "if (false) {", "failed completions ignored"),
    # The staging ring.
    (E + "staging_ring.h", "if (!slots_[index].busy) {", "if (true) {", "a busy staging slot is reused"),
    (E + "engine_load.cc", "    ring_planned_ = false;\n  });", "  });", "a failed op's ring kept half built"),
    # Safetensors checks.
    ("runtime/safetensors/header.cc", "if (t.begin > cursor)", "if (t.begin > cursor + 1)", "1-byte hole accepted"),
    ("runtime/safetensors/header.cc", "if (t.begin < cursor)", "if (t.begin + 1 < cursor)", "1-byte overlap accepted"),
    ("runtime/safetensors/header.cc", "if (bytes != t.end - t.begin)", "if (bytes > t.end - t.begin)",
     "a span larger than the shape accepted"),
    ("runtime/safetensors/header.cc", "if (cursor > data_bytes)", "if (cursor > data_bytes + 1)",
     "1 byte of truncation accepted"),
    ("runtime/safetensors/header.cc", "if (cursor < data_bytes)", "if (cursor + 1 < data_bytes)",
     "1 trailing byte accepted"),
    # The real executor's completion handling.
    ("runtime/executor/real_executor.cc", "if (!c.status.ok() && failure.ok()) failure = c.status;", ";",
     "the executor forgets a failed command"),
    ("runtime/executor/real_executor.cc", "    if (!r.status.ok())\n      result_.failed_ops.push_back(",
     "    if (false)\n      result_.failed_ops.push_back(", "failed ops not reported"),
]


def run(cmd, cwd, timeout=None, log=None):
    # A fixed "fresh" property seed: a mutant's verdict must not depend on the run.
    env = dict(os.environ, RESIDENCY_FRESH_SEED=os.environ.get("RESIDENCY_FRESH_SEED", "424242"))
    try:
        p = subprocess.run(cmd, cwd=cwd, shell=True, timeout=timeout, stdout=log or subprocess.DEVNULL,
                           stderr=subprocess.STDOUT, env=env)
        return p.returncode
    except subprocess.TimeoutExpired:
        return "timeout"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tests", default="", help="ctest -R regex (default: all tests)")
    ap.add_argument("--targets", default="", help="comma-separated CMake targets to rebuild per mutant")
    ap.add_argument("--only", default="", help="comma-separated mutant numbers (1-based)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds for one mutant's tests")
    ap.add_argument("--keep", default="", help="folder for the tree copy and its build, kept between runs")
    args = ap.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    work = args.keep or tempfile.mkdtemp(prefix="residency-mutate-")
    tree = os.path.join(work, "tree")
    os.makedirs(tree, exist_ok=True)
    # The working tree as it is (tracked and new files), without build outputs.
    files = subprocess.run("git ls-files -co --exclude-standard", cwd=repo, shell=True, capture_output=True,
                           text=True).stdout.split()
    # Only files whose content changed are written, with a fresh time stamp,
    # so a kept build rebuilds exactly what changed.
    for f in files:
        src, dst = os.path.join(repo, f), os.path.join(tree, f)
        if not os.path.isfile(src):
            continue
        with open(src, "rb") as a:
            new = a.read()
        if os.path.isfile(dst):
            with open(dst, "rb") as b:
                if b.read() == new:
                    continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy(src, dst)
    chosen = [int(x) for x in args.only.split(",") if x] or list(range(1, len(MUTANTS) + 1))
    ctest = "ctest --test-dir build/release -j2 --timeout 900" + (" -R '%s'" % args.tests if args.tests else "")
    print("building the unmutated tree in %s ..." % tree, flush=True)
    if run("cmake --preset release >/dev/null && cmake --build --preset release", tree) != 0:
        print("the unmutated tree does not build")
        return 2
    if run(ctest, tree, args.timeout) != 0:
        print("the unmutated tree fails its tests: fix that first")
        return 2
    build = "cmake --build --preset release" + "".join(" --target " + t for t in args.targets.split(",") if t)
    results = []
    for n in chosen:
        path, old, new, what = MUTANTS[n - 1]
        src = os.path.join(tree, path)
        text = open(src).read()
        if text.count(old) != 1:
            results.append((n, "stale", what))
            print("%2d stale   %s (the line is not in %s exactly once)" % (n, what, path), flush=True)
            continue
        open(src, "w").write(text.replace(old, new))
        t0 = time.time()
        try:
            if run(build, tree) != 0:
                verdict = "invalid"
            else:
                rc = run(ctest, tree, args.timeout)
                verdict = "alive" if rc == 0 else "killed"
        finally:
            open(src, "w").write(text)
        results.append((n, verdict, what))
        print("%2d %-7s %s  (%s, %.0f s)" % (n, verdict, what, path, time.time() - t0), flush=True)
    run("cmake --build --preset release", tree)  # leave the copy unmutated
    counted = [r for r in results if r[1] in ("killed", "alive")]
    killed = sum(1 for r in counted if r[1] == "killed")
    if counted:
        print("\n%d of %d mutants killed (%.0f %%)%s" % (killed, len(counted), 100.0 * killed / len(counted),
                                                        "; tests: " + args.tests if args.tests else ""))
    for n, verdict, what in results:
        if verdict == "alive":
            print("  alive: %d %s" % (n, what))
    return 0


if __name__ == "__main__":
    sys.exit(main())
