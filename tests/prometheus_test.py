#!/usr/bin/env python3
"""Debian's Prometheus scraping two residency agents on loopback.

1. promtool: the config, the rules and the rule unit tests pass; the Grafana
   dashboards are what dashboards/build_dashboards.py writes.
2. Two agents start with a gate; Prometheus (file_sd with both, 1 s scrapes)
   scrapes them; sweeps run through both agents, and captured traces
   (bench/make_captured_traces.py) from three hosts are replayed by them.
3. Every PromQL expression of the dashboards and the recording rules returns a
   non-empty result through Prometheus' HTTP API; for alert rules, the
   expression without its final threshold comparison does (their firing is
   covered by rules_test.yml), and ResidencyAgentDown's own expression turns
   non-empty once an agent is killed.

Usage: prometheus_test.py RESIDENCY_BIN SOURCE_ROOT. Exit 77 (skipped) without
prometheus/promtool."""
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

BIN, ROOT = sys.argv[1], pathlib.Path(sys.argv[2])
TOKEN = "fleet-test-token"


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def http(method, url, body=None, token=None, timeout=10):
    req = urllib.request.Request(url, data=body, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, pred, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if pred():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    fail(f"timed out waiting for {what}")


def main():
    if not shutil.which("prometheus") or not shutil.which("promtool"):
        print("SKIPPED: needs Debian's prometheus package (prometheus, promtool)")
        sys.exit(77)
    dash = ROOT / "dashboards"
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="residency-prom-"))
    procs = []
    try:
        # 1. Static checks.
        prom_dir = tmp / "prom"
        shutil.copytree(dash / "prometheus", prom_dir)
        for args in (["check", "config", "prometheus.yml"], ["check", "rules", "rules.yml"],
                     ["test", "rules", "rules_test.yml"]):
            r = subprocess.run(["promtool", *args], cwd=prom_dir, capture_output=True, text=True)
            if r.returncode != 0:
                fail(f"promtool {' '.join(args)}:\n{r.stdout}{r.stderr}")
        built = tmp / "grafana"
        subprocess.run([sys.executable, str(dash / "build_dashboards.py"), str(built)], check=True)
        for f in sorted((dash / "grafana").glob("*.json")):
            if f.read_text() != (built / f.name).read_text():
                fail(f"{f} is stale: run dashboards/build_dashboards.py")

        # 2. Two agents and a Prometheus scraping them through file_sd.
        (tmp / "token").write_text(TOKEN + "\n")
        # A gate whose candidates regress (--novram streams every step) and
        # newly OOM (comfy-classic's mmap on a DGX Spark, ComfyUI #10896).
        (tmp / "gate.json").write_text(json.dumps({
            "profiles": ["captured", "rtx5060-16g"], "baseline": "captured",
            "candidates": ["comfy-classic", {"name": "novram", "flags": ["--novram"]},
                           {"name": "no-pin", "flags": ["--disable-pinned-memory"]}],
            "metric": "makespan", "threshold": 5}))
        captured = tmp / "captured"
        for workflow, host in (("sdxl", "render-01"), ("wan22", "render-02"), ("spark", "spark-01")):
            subprocess.run([sys.executable, str(ROOT / "bench" / "make_captured_traces.py"), "--out", str(captured),
                            "--workflow", workflow, "--host", host, "--prompts", "2"], check=True,
                           stdout=subprocess.DEVNULL)
        ports = []
        for name in ("a", "b"):
            port_file = tmp / f"{name}.port"
            log = open(tmp / f"agent-{name}.log", "w")
            procs.append(subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--data", str(tmp / name),
                                           "--port-file", str(port_file), "--token-file", str(tmp / "token"),
                                           "--jobs-per-sweep", "1", "--gate", str(tmp / "gate.json")],
                                          stdout=log, stderr=subprocess.STDOUT))
            wait_for(f"agent {name}", port_file.exists, 20)
            ports.append(int(port_file.read_text()))
        for f in (prom_dir / "agents").glob("*.json"):
            f.unlink()
        (prom_dir / "agents" / "test.json").write_text(json.dumps(
            [{"targets": [f"127.0.0.1:{p}" for p in ports], "labels": {"rack": "test"}}]))
        cfg = (prom_dir / "prometheus.yml").read_text()
        cfg = cfg.replace("scrape_interval: 15s", "scrape_interval: 1s")
        cfg = cfg.replace("evaluation_interval: 15s", "evaluation_interval: 1s")
        cfg = cfg.replace("refresh_interval: 30s", "refresh_interval: 1s")
        (prom_dir / "prometheus.yml").write_text(cfg)
        prom_port = free_port()
        api = f"http://127.0.0.1:{prom_port}"
        procs.append(subprocess.Popen(
            ["prometheus", f"--config.file={prom_dir / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=open(tmp / "prometheus.log", "w"), stderr=subprocess.STDOUT))

        def query(expr):
            status, body = http("GET", api + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
            doc = json.loads(body)
            if status != 200 or doc.get("status") != "success":
                fail(f"query {expr!r}: HTTP {status}: {body[:300]!r}")
            return doc["data"]["result"]

        # Prometheus waits ~5 s before its first scrape (feasibility notes).
        wait_for("both agents up in Prometheus",
                 lambda: len([s for s in query('up{job="residency-agents"} == 1')]) == 2, 60)

        # 3. Sweeps through both agents (after the first scrape, so rates move).
        examples = ROOT / "traces" / "examples"
        for i, port in enumerate(ports):
            base = f"http://127.0.0.1:{port}"
            ids = []
            for name in ("sdxl-txt2img", "chroma-6lora", "ltx2-19b-lora"):
                status, body = http("POST", base + "/v1/traces", (examples / f"{name}.jsonl").read_bytes(), TOKEN)
                if status not in (200, 201):
                    fail(f"POST trace: {status} {body!r}")
                ids.append(json.loads(body)["id"])
            spec = {"traces": ids, "profiles": ["rtx5060-16g", "rtx5060-64g", "rtx4090-64g"],
                    "policies": ["drop", "ram-lru", "mmap-pageable"], "seeds": [1, 2] if i == 0 else [3]}
            status, body = http("POST", base + "/v1/sweeps", json.dumps(spec).encode(), TOKEN)
            if status != 202:
                fail(f"POST sweep: {status} {body!r}")
            sweep = json.loads(body)["id"]
            wait_for(f"sweep on agent {i}", lambda: json.loads(
                http("GET", f"{base}/v1/sweeps/{sweep}")[1])["status"] == "done", 120)
        # Captured traffic: each agent replays what it receives, under its gate.
        for i, f in enumerate(sorted(captured.glob("*.jsonl"))):
            base = f"http://127.0.0.1:{ports[i % 2]}"
            status, body = http("POST", base + "/v1/traces?name=" + f.stem[:60], f.read_bytes(), TOKEN)
            if status not in (200, 201):
                fail(f"POST captured trace: {status} {body!r}")
        for port in ports:
            wait_for(f"captured replays on agent {port}", lambda: (lambda q: q["queued"] + q["running"] == 0 and
                     q["done"] > 0)(json.loads(http("GET", f"http://127.0.0.1:{port}/v1/gate")[1])["queue"]), 120)
        for port in ports:  # some scrapes of every series, and of the HTTP traffic
            for _ in range(5):
                http("GET", f"http://127.0.0.1:{port}/metrics")
        time.sleep(4)

        exprs = []
        for f in sorted((dash / "grafana").glob("*.json")):
            for panel in json.loads(f.read_text())["panels"]:
                for t in panel.get("targets", []):
                    exprs.append((f"{f.name}: {panel['title']}", t["expr"].replace("$profile", ".+").replace("$host", ".+")))
        import yaml  # python3-yaml (scripts/install-deps.sh)
        doc = yaml.safe_load((dash / "prometheus" / "rules.yml").read_text())
        for rule in (r for g in doc["groups"] for r in g["rules"]):
            is_alert = "alert" in rule
            name, expr = rule.get("alert") or rule["record"], rule["expr"]
            if is_alert:
                stripped = re.sub(r"\s*(==|!=|>=|<=|>|<)\s*[0-9.e+-]+\s*$", "", expr.strip())
                if name == "ResidencyAgentDown":
                    continue  # checked for real below
                exprs.append((f"alert {name} (without its threshold)", stripped))
            else:
                exprs.append((f"record {name}", expr))
                exprs.append((f"recorded series {name}", name))
        empty = [(where, e) for where, e in exprs if not query(e)]
        for where, e in empty:
            print(f"FAIL: empty result: {where}: {e}")
        print(f"{len(exprs) - len(empty)}/{len(exprs)} dashboard and rule expressions return data")

        # The down alert's expression, for real: kill agent b.
        procs[1].send_signal(signal.SIGKILL)
        procs[1].wait()
        wait_for("up == 0 for the killed agent",
                 lambda: len(query('up{job="residency-agents"} == 0')) == 1, 30)
        print("ResidencyAgentDown expression is non-empty once an agent dies")
        if empty:
            sys.exit(1)
        print("prometheus checks pass")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
