#!/usr/bin/env bash
# One command for a GPU machine (docs/CUDA.md), from prebuilt binaries, in
# under 8 minutes: GPU, driver and PCIe link; the CUDA tests with
# RESIDENCY_REQUIRE_CUDA=1; a small trace run for real on the GPU; a 6.94 GB
# model loaded to the GPU (--verify, 3 passes) and to host memory only (the
# read ceiling), with CPU times; pinned and pageable host->device rates; the
# bundled SDXL trace run for real on that model. Figures go to OUTDIR.
#
#   scripts/gpu-check.sh OUTDIR [BINDIR]     BINDIR: default build/release
#
# BINDIR holds residency and tests/residency_runtime_tests; shared libraries
# they need that the machine lacks can sit in BINDIR/lib. The model goes to
# GPU_CHECK_WORK (default: a fresh folder in /var/tmp, removed at exit).
# GPU_CHECK_PROBE_ONLY=1 stops after the GPU probe (tests/gpu_check_test.sh).
# Exit: 0 every step passed; 1 a step failed; 2 usage, binaries or libraries
# missing, or a build without CUDA; 3 no usable GPU ("no GPU: ..."), found
# within seconds and before anything big is written.
set -u
usage="usage: $0 OUTDIR [BINDIR]"
if [ $# -lt 1 ] || [ $# -gt 2 ]; then echo "$usage" >&2; exit 2; fi
root=$(cd "$(dirname "$0")/.." && pwd)
out=$1
bindir=${2:-$root/build/release}
mkdir -p "$out" && out=$(cd "$out" && pwd) || { echo "gpu-check: cannot create $1" >&2; exit 2; }
bin=$bindir/residency
tests_bin=$bindir/tests/residency_runtime_tests
export RESIDENCY_DATA_DIR=$root/traces  # bundled traces, wherever the binaries were built
[ -d "$bindir/lib" ] && export LD_LIBRARY_PATH=$bindir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
exec > >(tee "$out/gpu-check.log") 2>&1

deadline=$((SECONDS + ${GPU_CHECK_BUDGET_S:-450}))  # 7.5 min: every step is cut off by then
failed=()

# Binaries and their shared libraries, before anything else.
[ -x "$bin" ] || { echo "gpu-check: $bin missing (pass BINDIR, or build: make build)"; exit 2; }
for b in "$bin" "$tests_bin"; do
  [ -x "$b" ] || continue
  missing=$(ldd "$b" 2>/dev/null | awk '/not found/ {print $1}' | tr '\n' ' ')
  [ -z "$missing" ] || { echo "gpu-check: $b needs shared libraries this machine lacks: $missing" \
                              "(put them in $bindir/lib; docs/CUDA.md lists what travels)"; exit 2; }
done

work=${GPU_CHECK_WORK:-}
if [ -z "$work" ]; then
  work=$(mktemp -d "${TMPDIR:-/var/tmp}/gpu-check.XXXXXX") || exit 2
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"

# User and system CPU time of a step, from /usr/bin/time -v or bash's `times`.
if [ -x /usr/bin/time ]; then timer=(/usr/bin/time -v -o); else timer=(); fi
cpu_line() {  # NAME -> "user U s, sys S s, wall W s, max RSS R KiB" (what is known)
  local f=$out/$1.time
  if [ ! -s "$f" ]; then echo "(no CPU times)"; return; fi
  if grep -q "User time" "$f"; then
    awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} /Elapsed \(wall/ {w=$2} /Maximum resident/ {r=$2}
                END {printf "user %s s, sys %s s, wall %s, max RSS %s KiB\n", u, s, w, r}' "$f"
  else
    tail -1 "$f" | awk '{printf "user %s, sys %s (bash times)\n", $1, $2}'
  fi
}
user_sys_seconds() {  # NAME -> user+sys seconds, from /usr/bin/time -v only
  awk -F': ' '/User time|System time/ {t += $2} END {print t + 0}' "$out/$1.time" 2>/dev/null
}

# step NAME LIMIT_S CMD...: output in OUTDIR/NAME.txt, CPU times in NAME.time.
step() {
  local name=$1 limit=$2 left=$((deadline - SECONDS)) rc t0=$SECONDS
  shift 2
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 5 ]; then
    echo "== $name: SKIPPED, out of time"; failed+=("$name (out of time)"); return 1
  fi
  echo "== $name (at most ${limit} s): $*"
  if [ ${#timer[@]} -gt 0 ]; then
    "${timer[@]}" "$out/$name.time" timeout -k 10 "$limit" "$@" > "$out/$name.txt" 2>&1; rc=$?
  else
    (timeout -k 10 "$limit" "$@"; rc=$?; times > "$out/$name.time"; exit $rc) > "$out/$name.txt" 2>&1; rc=$?
  fi
  if [ $rc -eq 0 ]; then
    echo "   ok in $((SECONDS - t0)) s; $(cpu_line "$name")"
  else
    [ $rc -eq 124 ] && echo "   TIMED OUT after $limit s" || echo "   FAILED (exit $rc) after $((SECONDS - t0)) s"
    tail -n 15 "$out/$name.txt" | sed 's/^/   | /'
    failed+=("$name")
  fi
  return $rc
}

echo "gpu-check: binaries $bindir ($("$bin" --version 2>&1)), figures $out, scratch $work"

# 1. The GPU, its driver and PCIe link, as the driver reports them.
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.width.current,pcie.link.gen.max,memory.total \
    --format=csv 2>&1 | tee "$out/nvidia-smi.csv" | sed 's/^/  /'
else
  echo "  nvidia-smi: not installed"
fi

# 2. The probe: a 4 MB model onto the GPU through the real backend. Without a
# usable GPU this is where the run ends, in seconds.
probe_dir=$work/tiny
tiny=$root/tests/data/tiny-swap.jsonl
gen=$("$bin" gen-model --trace "$tiny" --model lora --out "$probe_dir" 2>&1) ||
  { echo "gpu-check: gen-model failed: $gen"; exit 2; }
probe=$("$bin" load "$probe_dir/lora.safetensors" --device cuda --verify 2>&1); rc=$?
echo "$probe" > "$out/probe.txt"
if [ $rc -ne 0 ]; then
  why=$(grep -m1 '^residency: ' <<<"$probe" | sed 's/^residency: //')
  case $why in
    *"no CUDA backend"*) echo "gpu-check: this build has no CUDA backend: $why"; exit 2 ;;
    "no usable CUDA GPU"* | "CUDA device 0 does not exist"*) echo "no GPU: $why"; exit 3 ;;
  esac
  echo "gpu-check: a GPU is there but the probe load failed (exit $rc):"; sed 's/^/  | /' <<<"$probe"
  failed+=(probe)
else
  echo "  GPU: $(sed -n 's/.*device \(cuda:[^]]*\)\].*/\1/p' <<<"$probe" | head -1)"
fi
[ "${GPU_CHECK_PROBE_ONLY:-0}" = 1 ] && { [ ${#failed[@]} -eq 0 ] && exit 0 || exit 1; }

# 3. The CUDA tests: here a missing GPU is a failure, not a skip.
if [ -x "$tests_bin" ]; then
  step cuda-tests 120 env RESIDENCY_REQUIRE_CUDA=1 "$tests_bin" --gtest_filter='Cuda*' &&
    grep -E '^\[  (PASSED|SKIPPED) ' "$out/cuda-tests.txt" | sed 's/^/   /'
else
  echo "== cuda-tests: FAILED, $tests_bin missing"; failed+=(cuda-tests)
fi

# 4. A small trace for real: loads, a LoRA patch, partial and dynamic loads.
for m in a b; do "$bin" gen-model --trace "$tiny" --model $m --out "$probe_dir" > /dev/null; done
step run-tiny 60 "$bin" run "$tiny" --models "$probe_dir" --device cuda --capture "$out/run-tiny.capture.jsonl" \
  --metrics-file "$out/run-tiny.prom"
tail -n 3 "$out/run-tiny.txt" | sed 's/^/   /'

# 5. A 6.94 GB model (the bundled SDXL trace's), loaded to the GPU and to host
# memory only. The file is in the page cache once written: these are warm loads.
sdxl=$root/traces/examples/sdxl-txt2img.jsonl
model=$work/model/sd_xl_base_1.0.safetensors
free_kib=$(df -Pk "$work" | awk 'NR == 2 {print $4}')
if [ "${free_kib:-0}" -lt $((10 * 1024 * 1024)) ]; then
  echo "== gen-model: FAILED, $work has $((free_kib / 1024)) MiB free, the model needs 7 GB (set GPU_CHECK_WORK)"
  failed+=(gen-model)
elif step gen-model 150 "$bin" gen-model --trace "$sdxl" --model sdxl-base --out "$work/model"; then
  step load-cuda-verify 150 "$bin" load "$model" --device cuda --verify --repeat 3
  step load-none 90 "$bin" load "$model" --device none --repeat 3
  step load-cuda 90 "$bin" load "$model" --device cuda --repeat 3  # CPU time without verify's
  for s in load-cuda-verify load-none load-cuda; do
    [ -s "$out/$s.txt" ] && grep -E '^(loaded|  passes|  pinning|  verify)' "$out/$s.txt" | sed "s/^/   $s: /"
  done
fi

# 6. Host->device rates, pinned (cudaHostRegister) and pageable, as the
# executor copies. The disk figures are cut short: they are not the point here.
step calibrate 120 "$bin" calibrate --device cuda --out "$out/profile.json" --dir "$work" --file-size 256MiB \
  --threads 4 --repeat 1 --memory-size 1GiB --name gpu-check
grep -E '"pcie_(h2d_pinned|h2d_pageable|d2h)": "[0-9]' "$out/profile.json" 2>/dev/null | sed 's/^ */   /'

# 7. The bundled SDXL trace for real on the GPU, with its declared step times.
[ -f "$model" ] && step run-sdxl 90 "$bin" run "$sdxl" --models "$work/model" --device cuda \
  --capture "$out/run-sdxl.capture.jsonl" --metrics-file "$out/run-sdxl.prom"
[ -s "$out/run-sdxl.txt" ] && tail -n 3 "$out/run-sdxl.txt" | sed 's/^/   /'

# 8. Capture on ComfyUI's real dynamic VRAM path, where a ComfyUI >= 0.16
# checkout (COMFYUI_DIR), a CUDA torch and comfy-aimdo are there (issue 29).
if [ -n "${COMFYUI_DIR:-}" ] && command -v python3 > /dev/null; then
  RESIDENCY_BIN=$bin step capture-dynamic 120 python3 "$root/harness/capture/integration/dynamic_vram_check.py" "$work"
  [ -s "$out/capture-dynamic.txt" ] && grep -E '^(loads|PASS|FAIL|SKIPPED)' "$out/capture-dynamic.txt" | sed 's/^/   /'
else
  echo "== capture-dynamic: not run (set COMFYUI_DIR to a ComfyUI >= 0.16 checkout with a CUDA torch and comfy-aimdo)"
fi

# The goals (issue 22): warm load to the device >= 0.8x the pinned H2D rate,
# copier CPU time <= 10 % of the wall time.
{
  rate() { sed -n 's/^loaded .* = \([0-9.]*\) GB\/s.*/\1/p' "$out/$1.txt" 2>/dev/null | head -1; }
  pinned=$(sed -n 's/.*"pcie_h2d_pinned": "\([0-9]*\) B\/s".*/\1/p' "$out/profile.json" 2>/dev/null)
  pageable=$(sed -n 's/.*"pcie_h2d_pageable": "\([0-9]*\) B\/s".*/\1/p' "$out/profile.json" 2>/dev/null)
  echo "gpu: $(tail -n +2 "$out/nvidia-smi.csv" 2>/dev/null | head -1)"
  gbps() { awk -v b="${1:-0}" 'BEGIN {printf "%.2f GB/s", b / 1e9}'; }
  echo "h2d pinned: $(gbps "$pinned"), pageable: $(gbps "$pageable")"
  for s in load-cuda-verify load-cuda load-none; do
    [ -s "$out/$s.txt" ] && echo "$s: last pass $(rate $s) GB/s; $(cpu_line $s)"
  done
  if [ -n "$(rate load-cuda)" ] && [ -n "${pinned:-}" ] && [ "${pinned:-0}" -gt 0 ]; then
    awk -v r="$(rate load-cuda)" -v p="$pinned" \
      'BEGIN {printf "goal load >= 0.8x pinned H2D: %.2f x (%s)\n", r * 1e9 / p,
              (r * 1e9 >= 0.8 * p) ? "met" : "NOT met"}'
  fi
  if [ -s "$out/load-cuda.time" ] && [ -s "$out/load-none.time" ] && grep -q "User time" "$out/load-cuda.time"; then
    wall=$(awk -F': ' '/Elapsed \(wall/ {n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]
                                          print s}' "$out/load-cuda.time")
    awk -v c="$(user_sys_seconds load-cuda)" -v n="$(user_sys_seconds load-none)" -v w="$wall" \
      'BEGIN {d = c - n; if (d < 0) d = 0
             printf "copy CPU estimate (cuda load CPU - host-only load CPU, over the cuda load wall): "
             printf "%.1f s of %.1f s = %.1f %% (goal <= 10 %%: %s)\n", d, w, (w > 0) ? 100 * d / w : 0,
                    (w > 0 && d <= 0.1 * w) ? "met" : "NOT met"}'
  fi
  echo "failed steps: ${failed[*]:-none}"
} > "$out/summary.txt"
echo "== summary ($out/summary.txt)"
sed 's/^/  /' "$out/summary.txt"
if [ ${#failed[@]} -gt 0 ]; then echo "gpu-check: FAILED: ${failed[*]}"; exit 1; fi
echo "gpu-check: every step passed; figures in $out"
