#!/usr/bin/env python3
"""Load test of the agent against clients that don't play fair (issue 20, class 5).

Starts `residency serve` on a free loopback port with a bearer token, then at
once, for --duration seconds:
  * --slow connections (slowloris): each sends a partial request header and
    then one more header line every --trickle seconds, never finishing it; a
    connection the agent closes is opened again, so the pressure stays;
  * --uploads oversized unauthenticated uploads in parallel (a --upload-bytes
    Content-Length and no token), each sending its body as fast as the agent
    takes it until the agent answers;
  * a scraper that GETs /metrics every second (and /healthz right after).
Reports scrapes ok/total, scrape latency p50/p99, the upload answers and how
much of each body was sent before the answer, and the agent's peak RSS
(VmHWM from /proc/PID/status). Goals: every scrape succeeds, p99 <= 50 ms,
peak RSS <= 300 MB. Exit status 1 when a goal is missed.

By default the slow connections come from 127.0.0.2 and the uploads from
127.0.0.3 (other clients than the scraper on 127.0.0.1); --same-address puts
everybody on 127.0.0.1, the worst case for the per-client connection cap.

Usage: bench/agent_load.py [PATH/TO/residency] [--duration 20] [--slow 600] ... [-- SERVE FLAGS]
Python 3 standard library only.
"""

import argparse
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("binary", nargs="?", default="build/release/residency", help="the residency binary")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    p.add_argument("--slow", type=int, default=600, help="slow (slowloris) connections")
    p.add_argument("--trickle", type=float, default=1.0, help="seconds between a slow connection's header lines")
    p.add_argument("--uploads", type=int, default=40, help="oversized unauthenticated uploads, in parallel")
    p.add_argument("--upload-bytes", type=int, default=60_000_000, help="their Content-Length")
    p.add_argument("--same-address", action="store_true", help="every client on 127.0.0.1")
    p.add_argument("--json", metavar="FILE", help="also write the figures here as JSON")
    p.add_argument("--keep", action="store_true", help="keep the agent's data directory and log")
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:  # what follows goes to `residency serve`
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    a = p.parse_args(argv)
    a.agent_args = extra
    return a


def percentile(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(q / 100.0 * (len(s) - 1)))))
    return s[k]


def status_of(raw):
    if raw.startswith(b"HTTP/1.1 ") and len(raw) >= 12:
        try:
            return int(raw[9:12])
        except ValueError:
            return 0
    return 0


class Agent:
    def __init__(self, binary, extra):
        self.dir = tempfile.mkdtemp(prefix="residency-agent-load-")
        self.token = "load-test-token"
        with open(os.path.join(self.dir, "token"), "w") as f:
            f.write(self.token + "\n")
        port_file = os.path.join(self.dir, "port")
        self.log = open(os.path.join(self.dir, "agent.log"), "w")
        cmd = [binary, "serve", "--listen", "127.0.0.1:0", "--data", os.path.join(self.dir, "data"),
               "--port-file", port_file, "--token-file", os.path.join(self.dir, "token")] + extra
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.port = 0
        for _ in range(1000):
            if self.proc.poll() is not None:
                raise SystemExit(f"agent exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with open(port_file) as f:
                    self.port = int(f.read().strip())
                    break
            except (OSError, ValueError):
                time.sleep(0.01)
        if not self.port:
            raise SystemExit("agent did not write its port")

    def status_kb(self, field):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def connect(port, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def slowloris(port, source, count, trickle, stop, stats):
    """Keeps `count` connections sending a header that never ends."""
    head = b"GET /v1/runs HTTP/1.1\r\nHost: agent\r\nUser-Agent: slow\r\n"
    conns = []

    def open_one():
        try:
            s = connect(port, source)
            s.setblocking(False)
            s.send(head)
            stats["opened"] += 1
            return s
        except OSError:
            stats["connect_errors"] += 1
            return None

    for _ in range(count):
        conns.append(open_one())
    stats["ramped_at"] = time.monotonic()
    n = 0
    while not stop.is_set():
        n += 1
        for i, s in enumerate(conns):
            if stop.is_set():
                break
            alive = s is not None
            if alive:
                try:
                    s.send(b"X-Slow-%d: %d\r\n" % (i, n))
                    # The agent closed it: reading gives EOF or an error.
                    if not s.recv(4096):
                        alive = False
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    alive = False
            if not alive:
                if s is not None:
                    s.close()
                    stats["closed_by_agent"] += 1
                conns[i] = open_one()
        stop.wait(trickle)
    for s in conns:
        if s is not None:
            s.close()


def upload(port, source, size, results, lock):
    """One oversized upload without a token: sends until the agent answers."""
    t0 = time.monotonic()
    sent = 0
    answer = b""
    error = ""
    try:
        s = connect(port, source)
        s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: agent\r\nContent-Type: application/x-ndjson\r\n"
                  b"Content-Length: %d\r\n\r\n" % size)
        s.setblocking(False)
        chunk = b"x" * 65536
        poller = select.poll()
        while b"\r\n\r\n" not in answer and time.monotonic() - t0 < 60:
            poller.register(s, select.POLLIN | (select.POLLOUT if sent < size else 0))
            events = dict(poller.poll(1000))
            ev = events.get(s.fileno(), 0)
            if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                data = s.recv(65536)
                if not data:
                    break
                answer += data
            elif ev & select.POLLOUT:
                try:
                    sent += s.send(chunk[: min(len(chunk), size - sent)])
                except (BlockingIOError, InterruptedError):
                    pass
        s.close()
    except OSError as e:
        error = type(e).__name__
    with lock:
        results.append({"status": status_of(answer), "sent": sent, "seconds": time.monotonic() - t0,
                        "error": error, "retry_after": b"Retry-After:" in answer})


def scrape(port, path, timeout=5.0):
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            r.read()
            code = r.status
    except urllib.error.HTTPError as e:
        code = e.code
    except OSError:
        code = 0
    return code, (time.monotonic() - t0) * 1000.0


def main():
    a = parse_args()
    extra = a.agent_args
    slow_from = "127.0.0.1" if a.same_address else "127.0.0.2"
    upload_from = "127.0.0.1" if a.same_address else "127.0.0.3"
    agent = Agent(a.binary, extra)
    print(f"agent pid {agent.proc.pid} on port {agent.port} (data in {agent.dir})", flush=True)

    stop = threading.Event()
    slow_stats = {"opened": 0, "closed_by_agent": 0, "connect_errors": 0, "ramped_at": 0.0}
    slow_thread = threading.Thread(target=slowloris,
                                   args=(agent.port, slow_from, a.slow, a.trickle, stop, slow_stats), daemon=True)
    t_start = time.monotonic()
    slow_thread.start()

    uploads, lock = [], threading.Lock()
    upload_threads = []

    def fire_uploads():
        stop.wait(1.0)  # once the slow connections are in
        for _ in range(a.uploads):
            t = threading.Thread(target=upload, args=(agent.port, upload_from, a.upload_bytes, uploads, lock),
                                 daemon=True)
            t.start()
            upload_threads.append(t)

    firer = threading.Thread(target=fire_uploads, daemon=True)
    firer.start()

    scrapes, health, rss = [], [], []
    next_at = time.monotonic()
    while time.monotonic() - t_start < a.duration:
        scrapes.append(scrape(agent.port, "/metrics"))
        health.append(scrape(agent.port, "/healthz"))
        rss.append(agent.status_kb("VmRSS"))
        next_at += 1.0
        time.sleep(max(0.0, next_at - time.monotonic()))

    firer.join()
    for t in upload_threads:
        t.join(timeout=70)
    peak_kb = agent.status_kb("VmHWM")
    stop.set()
    slow_thread.join(timeout=30)
    rc = agent.stop()
    if not a.keep:
        shutil.rmtree(agent.dir, ignore_errors=True)

    ok = sum(1 for code, _ in scrapes if code == 200)
    lat = [ms for code, ms in scrapes if code == 200]
    hok = sum(1 for code, _ in health if code == 200)
    by_status = {}
    for u in uploads:
        key = str(u["status"]) if u["status"] else (u["error"] or "no answer")
        by_status[key] = by_status.get(key, 0) + 1
    sent = [u["sent"] for u in uploads]
    answered_in = [u["seconds"] for u in uploads if u["status"]]
    figures = {
        "slow_connections": a.slow, "uploads": a.uploads, "upload_bytes": a.upload_bytes,
        "same_address": a.same_address, "duration_s": a.duration,
        "scrapes_ok": ok, "scrapes_total": len(scrapes),
        "scrape_p50_ms": round(percentile(lat, 50), 2), "scrape_p99_ms": round(percentile(lat, 99), 2),
        "scrape_max_ms": round(max(lat), 2) if lat else None,
        "healthz_ok": hok, "healthz_total": len(health),
        "upload_answers": by_status,
        "upload_body_sent_max_bytes": max(sent) if sent else 0,
        "upload_body_sent_median_bytes": int(statistics.median(sent)) if sent else 0,
        "upload_answer_max_s": round(max(answered_in), 3) if answered_in else None,
        "slow_opened": slow_stats["opened"], "slow_closed_by_agent": slow_stats["closed_by_agent"],
        "slow_connect_errors": slow_stats["connect_errors"],
        "agent_peak_rss_mb": round(peak_kb / 1024.0, 1),
        "agent_rss_max_sampled_mb": round(max(rss) / 1024.0, 1) if rss else 0,
        "agent_exit_status": rc,
    }
    goals = {
        "every scrape succeeds": ok == len(scrapes) and len(scrapes) > 0,
        "scrape p99 <= 50 ms": bool(lat) and percentile(lat, 99) <= 50.0,
        "agent peak RSS <= 300 MB": peak_kb / 1024.0 <= 300.0,
    }
    figures["goals"] = goals
    print(f"slow connections: {a.slow} from {slow_from} (opened {slow_stats['opened']}, "
          f"closed by the agent {slow_stats['closed_by_agent']}, connect errors {slow_stats['connect_errors']})")
    print(f"uploads: {a.uploads} x Content-Length {a.upload_bytes} without a token from {upload_from}: "
          f"answers {by_status}; body sent before the answer: median {figures['upload_body_sent_median_bytes']} B, "
          f"max {figures['upload_body_sent_max_bytes']} B; slowest answer {figures['upload_answer_max_s']} s")
    print(f"scrapes /metrics: {ok}/{len(scrapes)} ok; latency p50 {figures['scrape_p50_ms']} ms, "
          f"p99 {figures['scrape_p99_ms']} ms, max {figures['scrape_max_ms']} ms")
    print(f"probes /healthz: {hok}/{len(health)} ok")
    print(f"agent peak RSS (VmHWM): {figures['agent_peak_rss_mb']} MB; exit status after SIGTERM {rc}")
    for name, met in goals.items():
        print(f"  {'PASS' if met else 'FAIL'}  {name}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(figures, f, indent=2)
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
