#!/usr/bin/env python3
"""The agent under a stream of captured traces (issue 28, docs/BENCHMARKS.md).

Captured Wan 2.2 sessions of 50 prompts each (bench/make_captured_traces.py)
are POSTed to `residency serve` as fast as it takes them, twice:
  A. no gate: each trace replayed on its own machine under its own settings;
  B. --gate with 3 profiles x 3 candidates (captured baseline): the fidelity
     replay plus 3 x (1 + 3) gate runs per trace, the baseline on `captured`
     shared with the fidelity run.
A second thread scrapes /metrics every 20 ms throughout. Printed per phase:
traces replayed per core-second of the agent's CPU time (utime + stime from
/proc), per wall second, /metrics latency p50/p99/max while replaying, and the
agent's peak RSS (VmHWM).

Goals (issue 28): >= 1 trace of 50 Wan-size prompts per second per core for
the captured replay; /metrics p99 <= 50 ms throughout; RSS <= 300 MB.

Usage: agent_replay_bench.py RESIDENCY_BIN [--traces N] [--prompts P]
"""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def post(url, body):
    req = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status


def cpu_seconds(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def peak_rss_mb(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def phase(binary, tmp, traces, gate, label):
    data = tmp / f"data-{label}"
    port_file = tmp / f"port-{label}"
    args = [binary, "serve", "--listen", "127.0.0.1:0", "--data", str(data), "--port-file", str(port_file),
            "--replay-queue", "100000"]
    if gate:
        args += ["--gate", str(gate)]
    agent = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 20
        while not port_file.exists() and time.time() < deadline:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{int(port_file.read_text())}"
        latencies, stop = [], threading.Event()

        def scrape():
            while not stop.is_set():
                t = time.perf_counter()
                get(base + "/metrics")
                latencies.append(time.perf_counter() - t)
                stop.wait(0.02)

        scraper = threading.Thread(target=scrape, daemon=True)
        cpu0, t0 = cpu_seconds(agent.pid), time.perf_counter()
        scraper.start()
        for f in traces:
            if post(base + "/v1/traces?name=" + f.stem[:60], f.read_bytes()) not in (200, 201):
                raise SystemExit(f"POST {f.name} refused")
        while True:
            q = json.loads(get(base + "/v1/gate"))["queue"]
            if q["queued"] + q["running"] == 0 and q["done"] + q["failed"] >= len(traces):
                break
            time.sleep(0.05)
        wall, cpu = time.perf_counter() - t0, cpu_seconds(agent.pid) - cpu0
        stop.set()
        scraper.join()
        gate_doc = json.loads(get(base + "/v1/gate"))
        lat = sorted(latencies)
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
        print(f"{label}: {len(traces)} traces ({gate_doc['queue']['failed']} failed), "
              f"{len(gate_doc['verdicts'])} verdicts, in {wall:.2f} s wall, {cpu:.2f} s of agent CPU")
        print(f"  {len(traces) / cpu:.2f} traces per core-second, {len(traces) / wall:.2f} traces per wall second")
        print(f"  /metrics while replaying: {len(lat)} scrapes, p50 {1000 * statistics.median(lat):.1f} ms, "
              f"p99 {1000 * p99:.1f} ms, max {1000 * lat[-1]:.1f} ms")
        print(f"  agent peak RSS {peak_rss_mb(agent.pid):.1f} MB")
    finally:
        agent.terminate()
        agent.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--traces", type=int, default=40)
    ap.add_argument("--prompts", type=int, default=50)
    a = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="residency-replay-bench-"))
    try:
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_captured_traces.py"), "--out", str(tmp / "traces"),
                        "--workflow", "wan22", "--traces", str(a.traces), "--prompts", str(a.prompts)],
                       check=True, stdout=subprocess.DEVNULL)
        traces = sorted((tmp / "traces").glob("*.jsonl"))
        gate = tmp / "gate.json"
        gate.write_text(json.dumps({
            "profiles": ["captured", "rtx5060-64g", "rtx4090-64g"], "baseline": "captured",
            "candidates": ["comfy-aug2026", {"name": "no-pin", "flags": ["--disable-pinned-memory"]},
                           {"name": "cache-ram-32", "flags": ["--cache-ram", "4", "32"]}]}))
        print(f"{len(traces)} captured Wan 2.2 traces of {a.prompts} prompts "
              f"({sum(f.stat().st_size for f in traces) / len(traces) / 1024:.0f} KiB each), {os.cpu_count()} cores")
        phase(a.binary, tmp, traces, None, "A. captured replay (fidelity only)")
        phase(a.binary, tmp, traces, gate, "B. captured replay + gate of 3 profiles x 3 candidates")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
