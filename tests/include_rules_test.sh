#!/usr/bin/env bash
# Fails when runtime/engine includes anything but the standard library and
# itself, or when sim/ includes runtime/ code other than the engine.
set -u
root=${1:?usage: include_rules_test.sh REPO_ROOT}
fail=0
while IFS= read -r line; do
  echo "engine includes a non-engine header: $line"; fail=1
done < <(grep -rnE '^\s*#\s*include\s*"' "$root/runtime/engine" | grep -vE '#\s*include\s*"runtime/engine/')
# Angle includes in the engine must be standard headers (no '/' or '.h', but <c*> ones).
while IFS= read -r line; do
  echo "engine includes a non-standard header: $line"; fail=1
done < <(grep -rnE '^\s*#\s*include\s*<' "$root/runtime/engine" | grep -E '<[^>]*(/|\.h[^>]*)>')
while IFS= read -r line; do
  echo "sim includes runtime code outside the engine: $line"; fail=1
done < <(grep -rnE '^\s*#\s*include\s*"runtime/' "$root/sim" | grep -vE '"runtime/engine/')
# Pure: no clocks, threads, files or environment inside the engine.
while IFS= read -r line; do
  echo "engine is not pure: $line"; fail=1
done < <(grep -rnE 'std::chrono::(steady|system|high_resolution)_clock|std::thread|std::mutex|fopen|ifstream|ofstream|pthread|getenv|\brand\(' "$root/runtime/engine")
[ $fail -eq 0 ] && echo "include rules hold"
exit $fail
