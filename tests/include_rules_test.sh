#!/usr/bin/env bash
# The layering rules, checked on the tree's #includes:
#   runtime/base     includes only the standard library and itself;
#   runtime/engine   includes only the standard library, base and itself, and
#                    names no clock, thread, mutex, file stream, getenv or rand;
#   runtime/io, runtime/safetensors, runtime/device never include the engine;
#   sim/             includes no runtime/ code but the engine and base;
#   harness/ROOM     includes only the harness rooms its line in `rooms` names
#                    (report never reaches the agent; nothing but the CLI
#                    itself includes harness/cli), and harness/ has no loose
#                    files at its top level: every file lives in a room.
# Before checking the tree, each rule is run on a scratch tree holding one
# planted violation, and must catch it (a rule that cannot fail checks nothing).
set -u
root=${1:?usage: include_rules_test.sh REPO_ROOT}

# Prints one line per violation under $1; returns 0 when there are none.
violations() {
  local r=$1 found=0
  local quoted='^\s*#\s*include\s*"'
  while IFS= read -r line; do echo "base includes a non-base header: $line"; found=1
  done < <(grep -rnE "$quoted" "$r/runtime/base" 2>/dev/null | grep -vE '#\s*include\s*"runtime/base/')
  while IFS= read -r line; do echo "engine includes a header outside the engine and base: $line"; found=1
  done < <(grep -rnE "$quoted" "$r/runtime/engine" 2>/dev/null | grep -vE '#\s*include\s*"runtime/(engine|base)/')
  # Angle includes in base and the engine must be standard headers (no '/' or '.h').
  while IFS= read -r line; do echo "base or engine includes a non-standard header: $line"; found=1
  done < <(grep -rnE '^\s*#\s*include\s*<' "$r/runtime/engine" "$r/runtime/base" 2>/dev/null | grep -E '<[^>]*(/|\.h[^>]*)>')
  while IFS= read -r line; do echo "below the engine, a file includes the engine: $line"; found=1
  done < <(grep -rnE '^\s*#\s*include\s*"runtime/engine/' "$r/runtime/io" "$r/runtime/safetensors" "$r/runtime/device" 2>/dev/null)
  while IFS= read -r line; do echo "sim includes runtime code outside the engine and base: $line"; found=1
  done < <(grep -rnE '^\s*#\s*include\s*"runtime/' "$r/sim" 2>/dev/null | grep -vE '"runtime/(engine|base)/')
  # Each harness room and the rooms it may include (the CLI may include all).
  local rooms="common:common store:store report:report,store,common calibrate:calibrate,common
               fidelity:fidelity,calibrate,report,store,common metrics:metrics,common
               sweep:sweep,report,store,common gate:gate,fidelity,sweep,report,store,common
               agent:agent,gate,metrics,sweep,store,report,common
               fleet:fleet,sweep,store,common import:import proof:proof"
  local entry room allowed
  for entry in $rooms; do
    room=${entry%%:*} allowed=${entry#*:}
    while IFS= read -r line; do echo "harness/$room includes a room it may not use: $line"; found=1
    done < <(grep -rnE '^\s*#\s*include\s*"harness/' "$r/harness/$room" 2>/dev/null |
             grep -vE "#\s*include\s*\"harness/(${allowed//,/|})/")
  done
  while IFS= read -r line; do echo "a file outside the CLI includes the CLI: $line"; found=1
  done < <(grep -rnE '^\s*#\s*include\s*"harness/cli/' "$r" --include='*.h' --include='*.cc' 2>/dev/null |
           grep -v "^$r/harness/cli/")
  while IFS= read -r line; do echo "a loose file at harness/'s top level (put it in a room): $line"; found=1
  done < <(find "$r/harness" -maxdepth 1 -type f \( -name '*.h' -o -name '*.cc' \) 2>/dev/null)
  # Pure: no clocks, threads, files or environment inside the engine or base.
  while IFS= read -r line; do echo "engine or base is not pure: $line"; found=1
  done < <(grep -rnE 'std::chrono::(steady|system|high_resolution)_clock|std::thread|std::mutex|fopen|ifstream|ofstream|pthread|getenv|\brand\(' \
             "$r/runtime/engine" "$r/runtime/base" 2>/dev/null)
  return $found
}

fail=0
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
plant() {  # plant DIR FILE LINE: a tree with one violation; the rules must catch it
  rm -rf "$scratch/t" && mkdir -p "$scratch/t/$1"
  printf '%s\n' "$3" > "$scratch/t/$1/$2"
  if violations "$scratch/t" > /dev/null; then
    echo "the rules miss a planted violation: $1/$2: $3"; fail=1
  fi
}
plant runtime/base a.h '#include "runtime/engine/types.h"'
plant runtime/engine a.h '#include "runtime/io/host_buffer.h"'
plant runtime/engine a.h '#include <nlohmann/json.hpp>'
plant runtime/engine a.cc 'auto t = std::chrono::steady_clock::now();'
plant runtime/base a.cc 'std::mutex m;'
plant runtime/io a.h '#include "runtime/engine/engine.h"'
plant runtime/safetensors a.h '#include "runtime/engine/types.h"'
plant runtime/device a.h '#include "runtime/engine/commands.h"'
plant sim a.h '#include "runtime/executor/real_executor.h"'
plant harness/report a.h '#include "harness/agent/agent.h"'
plant harness/report a.cc '#include "harness/metrics/metrics.h"'
plant harness/store a.h '#include "harness/report/report.h"'
plant harness/metrics a.cc '#include "harness/cli/cli.h"'
plant tests a.cc '#include "harness/cli/device_choice.h"'
plant harness a.cc '#include <vector>'
# A clean scratch tree passes.
rm -rf "$scratch/t" && mkdir -p "$scratch/t/runtime/engine" &&
  printf '#include "runtime/base/status.h"\n#include <vector>\n' > "$scratch/t/runtime/engine/a.h"
violations "$scratch/t" > /dev/null || { echo "the rules flag a clean tree"; fail=1; }

violations "$root" || fail=1
[ $fail -eq 0 ] && echo "include rules hold (and each catches its planted violation)"
exit $fail
