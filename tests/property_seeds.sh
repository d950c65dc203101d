#!/bin/sh
# Runs one property (gtest filter $2 of binary $1) twice: with the fixed CI
# seed, so a red CI reproduces, and with a fresh seed, so every run explores
# new cases. An explicit RC_PARAMS runs only that. A failure prints
# RapidCheck's reproduce string; rerun with RC_PARAMS="reproduce=...".
# $3, optional, is this property's share of RESIDENCY_PROPERTY_CASES in
# percent (a costly property whose bugs show early runs fewer).
# RESIDENCY_FIXED_SEED_ONLY=1 skips the fresh seed (the sanitizer builds).
set -u
bin=$1 filter=$2 share=${3:-100}
cases=$(( ${RESIDENCY_PROPERTY_CASES:-3400} * share / 100 ))
[ "$cases" -ge 1 ] || cases=1
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
[ "${RESIDENCY_FIXED_SEED_ONLY:-0}" = 1 ] && exit 0
fresh=${RESIDENCY_FRESH_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
run "$fresh" "fresh seed"
