#!/usr/bin/env bash
# Renders every artifact a person opens in a real headless Chromium (Debian's
# `chromium` package) and checks it:
#   - replay's memory SVGs (one per policy of a --compare), for a trace whose
#     name needs escaping ("flux & lora <v2>"): each parses as XML and draws;
#   - the HTML report of a small sweep with finished, OOM and infeasible runs:
#     it parses, every chart in it parses, and the page draws;
#   - the Perfetto timelines: valid JSON whose slices name their models.
# "Draws" means the screenshot has at least a few hundred non-white pixels.
#
#   scripts/render-check.sh [BIN] [OUTDIR]     (BIN: build/release/residency)
#
# Exit 0 when every check passes, 1 on a failed check, 77 when Chromium is
# not installed (apt-get install chromium), so ctest reports a skip.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/build/release/residency}
out=${2:-$(mktemp -d)}
mkdir -p "$out"
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "SKIPPED: render-check needs Chromium (apt-get install chromium)"
  exit 77
fi
fail=0
bad() { echo "FAIL: $*"; fail=1; }

chrome() {  # chrome ARGS... URL: headless, no sandbox (root in CI), quiet
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --user-data-dir="$out/.chromium" "$@" 2>>"$out/chromium.log"
}

# A PNG's count of pixels that are not (near) white, in pure Python.
inked() {
  python3 - "$1" <<'EOF'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, w = 8, b"", 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, color = struct.unpack(">IIBB", body[:10])
        assert depth == 8 and color in (2, 6), "expected 8-bit RGB(A)"
        bpp = 4 if color == 6 else 3
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
raw, stride, prev, ink, i = zlib.decompress(idat), w * bpp, None, 0, 0
for _ in range(h):
    f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
    i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x] if prev else 0
        c = prev[x - bpp] if prev and x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    ink += sum(1 for x in range(0, stride, bpp) if min(line[x:x + 3]) < 200)
    prev = line
print(ink)
EOF
}

check_drawn() {  # check_drawn FILE WIDTH HEIGHT
  local png="$out/$(basename "$1").png"
  chrome --screenshot="$png" --window-size="$2,$3" "file://$1" >/dev/null
  [ -s "$png" ] || { bad "$1: Chromium wrote no screenshot"; return; }
  local ink
  ink=$(inked "$png")
  [ "$ink" -ge 300 ] || bad "$1: the screenshot is nearly blank ($ink inked pixels)"
  echo "  $(basename "$1"): drawn, $ink inked pixels ($png)"
}

check_parses() {  # check_parses FILE: Chromium's DOM has no parser error
  chrome --dump-dom "file://$1" >"$out/$(basename "$1").dom"
  if grep -q "<parsererror" "$out/$(basename "$1").dom"; then
    bad "$1: Chromium could not parse it: $(grep -o 'error on line[^<]*' "$out/$(basename "$1").dom" | head -1)"
  else
    echo "  $(basename "$1"): parses"
  fi
}

echo "render-check: $bin -> $out"
# A trace whose name needs escaping everywhere it is printed.
python3 - "$here/traces/examples/sdxl-txt2img.jsonl" "$out/escaped.jsonl" <<'EOF'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
head = json.loads(lines[0]); head["name"] = "flux & lora <v2>"
open(sys.argv[2], "w").write("\n".join([json.dumps(head)] + lines[1:]) + "\n")
EOF
"$bin" replay "$out/escaped.jsonl" --profile rtx4090-64g --policy ram-lru --compare comfy-classic \
  --svg "$out/memory.svg" --timeline "$out/timeline.json" >/dev/null
for svg in "$out"/memory*.svg; do
  check_parses "$svg"
  check_drawn "$svg" 1000 500
done

# A report with finished, OOM and infeasible runs on two profiles.
rm -f "$out/results.db"
"$bin" sweep --db "$out/results.db" --quiet --traces "$here/traces/examples/sdxl-txt2img.jsonl" \
  "$here/traces/examples/wan22-14b-t2v.jsonl" --profiles rtx4090-64g rtx5060-16g \
  --policies drop ram-lru comfy-classic mmap-pageable >/dev/null || true
"$bin" report --db "$out/results.db" --html "$out/report.html" >/dev/null
check_parses "$out/report.html"
charts=$(grep -o "<svg" "$out/report.html.dom" | wc -l)
[ "$charts" -ge 2 ] || bad "report.html: $charts charts in the rendered DOM, expected one per profile (2)"
check_drawn "$out/report.html" 1280 1600
# Each chart of the report, alone, as the strict XML parser sees it.
python3 - "$out/report.html" "$out" <<'EOF'
import re, sys
html = open(sys.argv[1]).read()
for i, svg in enumerate(re.findall(r"<svg.*?</svg>", html, re.S)):
    open(f"{sys.argv[2]}/report-chart-{i}.svg", "w").write(svg)
EOF
for svg in "$out"/report-chart-*.svg; do check_parses "$svg"; done

for t in "$out"/timeline*.json; do
  python3 - "$t" <<'EOF' || bad "$t: not a timeline that names its models"
import json, sys
events = json.load(open(sys.argv[1]))["traceEvents"]
slices = [e for e in events if e.get("ph") in ("X", "B", "i", "I")]
assert slices, "no slices"
named = [e for e in slices if ":" in e.get("name", "")]
assert named, "no slice names a model"
print(f"  {sys.argv[1].rsplit('/', 1)[-1]}: {len(events)} events, {len(named)} slices name a model")
EOF
done

[ "$fail" = 0 ] && echo "render-check: every artifact parsed and drew in $($browser --version 2>/dev/null)"
exit "$fail"
