#!/bin/sh
# Runs one property (gtest filter $2 of binary $1) twice: with the fixed CI
# seed, so a red CI reproduces, and with a fresh seed, so every run explores
# new cases. An explicit RC_PARAMS runs only that. A failure prints
# RapidCheck's reproduce string; rerun with RC_PARAMS="reproduce=...".
set -u
bin=$1 filter=$2
cases=${RESIDENCY_PROPERTY_CASES:-3400}
if [ -n "${RC_PARAMS:-}" ]; then
  echo "property $filter: RC_PARAMS=\"$RC_PARAMS\""
  exec "$bin" --gtest_filter="$filter"
fi
run() {
  echo "property $filter: RC_PARAMS=\"max_success=$cases seed=$1\" ($2)"
  RC_PARAMS="max_success=$cases seed=$1" "$bin" --gtest_filter="$filter" || {
    echo "property $filter FAILED with seed $1; rerun: RC_PARAMS=\"max_success=$cases seed=$1\" $bin --gtest_filter=$filter"
    exit 1
  }
}
run 20261123 "fixed seed"
fresh=${RESIDENCY_FRESH_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
run "$fresh" "fresh seed"
