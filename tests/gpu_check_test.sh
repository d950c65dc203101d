#!/usr/bin/env bash
# scripts/gpu-check.sh where there is no GPU: one line "no GPU: ..." and exit
# 3 within seconds, nothing big written. Where a GPU is usable this skips
# (77): the full check is scripts/gpu-check.sh itself, minutes long.
set -u
source "$(dirname "$0")/cli_lib.sh" "$@"
bindir=$(dirname "$bin")
check=$root/scripts/gpu-check.sh
GPU_CHECK_PROBE_ONLY=1 GPU_CHECK_WORK=$tmp/probe-work "$check" "$tmp/probe" "$bindir" > "$tmp/probe.log" 2>&1; rc=$?
case $rc in
  0) echo "SKIPPED: a GPU is usable here; scripts/gpu-check.sh OUTDIR runs the full check"; exit 77 ;;
  1) echo "FAIL: a GPU is here but the gpu-check probe failed: $(cat "$tmp/probe.log")"; exit 1 ;;
  2) if grep -q "no CUDA backend" "$tmp/probe.log"; then echo "SKIPPED: this build has no CUDA backend"; exit 77; fi ;;
esac

start=$SECONDS
GPU_CHECK_WORK=$tmp/work expect 3 "^no GPU: (no usable CUDA GPU|CUDA device 0 does not exist)" -- "$check" "$tmp/out" "$bindir"
verdict=$(grep "^no GPU: " <<<"$out")
[ $((SECONDS - start)) -le 30 ] || { echo "FAIL: $((SECONDS - start)) s to find that there is no GPU"; fail=1; }
[ -z "$(find "$tmp/work" -size +100M)" ] || { echo "FAIL: a big model was written without a GPU"; fail=1; }
grep -q "^no GPU: " "$tmp/out/gpu-check.log" || { echo "FAIL: OUTDIR/gpu-check.log lacks the verdict"; fail=1; }
# Error 35 has two meanings; the message says which one this is.
if grep -q "(35)" <<<"$verdict"; then
  grep -qE "error 35 means either .*here (no driver is loaded|the driver supports CUDA)" <<<"$verdict" ||
    { echo "FAIL: error 35 without its explanation: $verdict"; fail=1; }
fi
expect 2 "usage: .*OUTDIR \[BINDIR\]" -- "$check"
expect 2 "residency missing" -- "$check" "$tmp/out2" "$tmp/nowhere"
[ $fail -eq 0 ] && echo "gpu-check says: $verdict"
exit $fail
