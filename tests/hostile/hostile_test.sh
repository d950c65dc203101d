#!/usr/bin/env bash
# Hostile inputs, one generator per class of issue 20 (the agent's class is
# in agent_test.cc): each case must end in a clear refusal naming the file,
# never a hang, a signal or unbounded memory. Bounded: every command runs
# under `timeout` and a 2 GiB address-space cap.
source "$(dirname "$0")/../cli_lib.sh" "$@"
# KiB: a case that grows memory without bound dies here, and fails (not
# under ASan, whose shadow memory reserves terabytes of address space).
ldd "$bin" 2>/dev/null | grep -q libasan || ulimit -v $((2 * 1024 * 1024))
run() { timeout 20 "$@"; }
header='{"format":"residency-trace","version":1,"name":"h"}'
model='{"type":"model","model":"m","files":[{"path":"m.safetensors","bytes":1000}]}'
trace() { { echo "$header"; printf '%s\n' "$@"; } > "$tmp/t.jsonl"; }

echo "== class 3: special files"
mkfifo "$tmp/fifo"
expect 2 "fifo: a FIFO, not a regular file" -- run "$bin" replay "$tmp/fifo"
expect 2 "fifo: a FIFO, not a regular file" -- run "$bin" replay sdxl-txt2img --profile "$tmp/fifo"
expect 2 "fifo: a FIFO, not a regular file" -- run "$bin" replay sdxl-txt2img --policy "$tmp/fifo"
expect 2 "fifo: not a regular file" -- run "$bin" load "$tmp/fifo"
expect 2 "/dev/zero: a character device, not a regular file" -- run "$bin" replay /dev/zero
expect 2 "/dev/zero: a character device" -- run "$bin" replay sdxl-txt2img --profile /dev/zero
expect 2 "/dev/zero: not a regular file" -- run "$bin" load /dev/zero
expect 2 "a directory, not a regular file" -- run "$bin" replay "$tmp"
expect 2 "a FIFO, not a regular file" -- run "$bin" import comfyui-log "$tmp/fifo"

echo "== class 4: parsers that accepted too much"
profile=$root/traces/profiles/rtx4090-64g.json
{ cat "$profile"; printf '\0{"ram":"1 GiB"}'; } > "$tmp/nul.json"
expect 2 "nul.json: a NUL byte at offset" -- run "$bin" replay sdxl-txt2img --profile "$tmp/nul.json"
{ printf '\xef\xbb\xbf'; cat "$profile"; } > "$tmp/bom.json"
expect 2 "bom.json: starts with a UTF-8 byte-order mark" -- run "$bin" replay sdxl-txt2img --profile "$tmp/bom.json"
sed 's/"ram":/"ram": "1 GiB", "ram":/' "$profile" > "$tmp/dup.json"
expect 2 "dup.json: field 'ram' appears twice" -- run "$bin" replay sdxl-txt2img --profile "$tmp/dup.json"
python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); p["sources"]=["a"]; print(json.dumps(p))' "$root/traces/policies/drop.json" > "$tmp/src.json"
expect 2 "src.json: field 'sources' must be an object" -- run "$bin" replay sdxl-txt2img --policy "$tmp/src.json"
trace "$model" '{"type":"load","model":"m"} {"type":"load","model":"m"}'
expect 2 "t.jsonl:3: not valid JSON" -- run "$bin" replay "$tmp/t.jsonl"
trace '{"type":"load","model":"m","model":"n"}'
expect 2 "t.jsonl:2: field 'model' appears twice" -- run "$bin" replay "$tmp/t.jsonl"
{ echo "$header"; printf '{"type":"prompt_begin","prompt":1}\0{"x":1}\n'; } > "$tmp/t.jsonl"
expect 2 "t.jsonl:2: a NUL byte" -- run "$bin" replay "$tmp/t.jsonl"
# A name with a newline and a terminal escape is echoed escaped.
trace "$(printf '{"type":"load","model":"evil\\n\\u001b[31mred"}')"
out=$(run "$bin" replay "$tmp/t.jsonl" 2>&1)
if grep -q $'\x1b' <<<"$out" || [ "$(wc -l <<<"$out")" != 1 ] || ! grep -qF 'evil\n\x1b[31mred' <<<"$out"; then
  echo "FAIL: a hostile model name was echoed raw: $out"; fail=1
fi
# safetensors: an empty tensor name, a byte-order mark before the header.
python3 - "$tmp" <<'PY'
import json, struct, sys
def write(path, header, data=b"\0" * 8, pre=b""):
    h = pre + json.dumps(header).encode()
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)
t = {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]}
write(sys.argv[1] + "/empty.safetensors", {"": t})
write(sys.argv[1] + "/bom.safetensors", {"w": t}, pre=b"\xef\xbb\xbf")
PY
expect 2 "empty.safetensors: safetensors: header: a tensor name must not be empty" -- run "$bin" load "$tmp/empty.safetensors"
expect 2 "bom.safetensors: safetensors: header: starts with a UTF-8 byte-order mark" -- run "$bin" load "$tmp/bom.safetensors"

echo "== class 6: traces that would break the store"
trace '{"type":"prompt_begin","prompt":1}' '{"type":"prompt_end","prompt":1}' '{"type":"prompt_begin","prompt":1}' '{"type":"prompt_end","prompt":1}'
expect 2 "t.jsonl:4: prompt 1 begins a second time \(first at line 2\)" -- run "$bin" replay "$tmp/t.jsonl"

echo "== class 2: inputs that ask for unbounded work or memory"
trace '{"type":"model","model":"m","files":[{"path":"m","bytes":"6 GB","tensor_count":5000000}]}'
expect 2 "t.jsonl:2: files\[0\]: field 'tensor_count'" -- run "$bin" replay "$tmp/t.jsonl"
trace '{"type":"model","model":"m","files":[{"path":"m","bytes":"9000 TB"}]}'
expect 2 "t.jsonl:2: files\[0\]: field 'bytes'.*above the limit of 1 PiB" -- run "$bin" replay "$tmp/t.jsonl"
files=$(python3 -c 'import json; print(json.dumps([{"path": "f%d" % i, "bytes": "1000 TiB"} for i in range(3)]))')
trace "{\"type\":\"model\",\"model\":\"m\",\"files\":$files}" "{\"type\":\"model\",\"model\":\"n\",\"files\":$(sed 's/"f/"g/g' <<<"$files")}"
expect 2 "t.jsonl:2: limit 'declared_bytes'" -- run "$bin" replay "$tmp/t.jsonl"
python3 -c '
import sys
print(sys.argv[1])
print(sys.argv[2])
for i in range(11):
    print("{\"type\":\"compute\",\"models\":[\"m\"],\"steps\":1000000,\"step_ns\":1}")' "$header" "$model" > "$tmp/t.jsonl"
expect 2 "t.jsonl:13: limit 'compute_steps'" -- run "$bin" replay "$tmp/t.jsonl"
python3 - "$profile" "$tmp/slow.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
for k, v in list(p.items()):
    if isinstance(v, str) and v.endswith("/s"): p[k] = "1 B/s"
    if isinstance(v, dict) and k.startswith("disk_read"): p[k] = {c: "1 B/s" for c in v}
json.dump(p, open(sys.argv[2], "w"))
PY
expect 2 "limit 'max_sim_time'" -- run "$bin" replay sdxl-txt2img --profile "$tmp/slow.json"

echo "== class 1: a file that changes while it is loaded"
cat > "$tmp/g.jsonl" <<TRACE
$header
{"type":"model","model":"small","files":[{"path":"a.safetensors","bytes":"8 MiB","tensor_count":8,"tensor_distribution":"uniform","tensor_seed":1}]}
{"type":"model","model":"big","files":[{"path":"a.safetensors","bytes":"24 MiB","tensor_count":24,"tensor_distribution":"uniform","tensor_seed":2}]}
TRACE
mkdir -p "$tmp/small" "$tmp/big"
"$bin" gen-model --trace "$tmp/g.jsonl" --model small --out "$tmp/small" >/dev/null
"$bin" gen-model --trace "$tmp/g.jsonl" --model big --out "$tmp/big" >/dev/null
target=$tmp/live.safetensors
mutate() {  # swaps, grows and truncates the file under the loader until killed
  local i=0
  while :; do
    case $((i++ % 4)) in
      0) cp "$tmp/big/a.safetensors" "$target.new" && mv -f "$target.new" "$target" ;;
      1) cp "$tmp/small/a.safetensors" "$target.new" && mv -f "$target.new" "$target" ;;
      2) truncate -s 4M "$target" ;;
      3) cat "$tmp/big/a.safetensors" > "$target" ;;
    esac
    sleep 0.002
  done
}
cp "$tmp/small/a.safetensors" "$target"
mutate & mutator=$!
for method in threaded mmap-copy; do
  for threads in 1 2 4 16; do
    for _ in 1 2 3; do
      out=$(run "$bin" load "$target" --method "$method" --threads "$threads" --repeat 20 2>&1); rc=$?
      if [ "$rc" != 0 ] && { [ "$rc" != 2 ] || ! grep -qF "$target" <<<"$out"; }; then
        echo "FAIL: load --method $method --threads $threads of a changing file: rc=$rc: $out"; fail=1
      fi
    done
  done
done
kill "$mutator"; wait "$mutator" 2>/dev/null

echo "== class 5: clients that don't play fair with the agent (the full load test: bench/agent_load.py)"
echo secret > "$tmp/token"
"$bin" serve --listen 127.0.0.1:0 --port-file "$tmp/port" --data "$tmp/agent" --token-file "$tmp/token" \
  --timeout 2 > "$tmp/agent.log" 2>&1 & agent=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
rss_limit=300; ldd "$bin" 2>/dev/null | grep -q libasan && rss_limit=2000  # ASan's shadow memory counts
python3 - "$(cat "$tmp/port")" "$agent" "$rss_limit" <<'PY' || fail=1
import socket, sys, threading, time
port, pid, rss_limit = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def connect(source="127.0.0.1"):
    return socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
def answer(s):
    data = b""
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk: break
        data += chunk
    return data.split(b"\r\n", 1)[0].decode(errors="replace")
ok = True
# Slow clients from another address: a partial header each, never finished.
slow = []
for _ in range(100):
    c = connect("127.0.0.2"); c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n"); slow.append(c)
# Unauthenticated 60 MB uploads: refused on the header, before any body byte.
t0 = time.monotonic()
for _ in range(20):
    c = connect()
    c.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 60000000\r\n\r\n")
    status = answer(c)
    if " 401 " not in status + " ":
        print(f"FAIL: an unauthenticated 60 MB upload got {status!r}, not 401"); ok = False
    c.close()
refused_s = time.monotonic() - t0
# Health still answers among the slow clients.
c = connect(); c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
status = answer(c)
if " 200 " not in status + " ": print(f"FAIL: /healthz among 100 slow clients got {status!r}"); ok = False
rss = int(next(l for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM")).split()[1]) // 1024
if refused_s > 5 or rss > rss_limit:
    print(f"FAIL: 20 refusals took {refused_s:.2f} s, agent peak RSS {rss} MB"); ok = False
print(f"agent: 20 oversized unauthenticated uploads refused in {refused_s:.2f} s, /healthz {status!r}, peak RSS {rss} MB")
sys.exit(0 if ok else 1)
PY
kill "$agent"; wait "$agent" 2>/dev/null

[ "$fail" = 0 ] && echo "hostile: all cases refused cleanly"
exit "$fail"
