#!/usr/bin/env python3
"""A real three-node fleet on one machine (issue 28, docs/FLEET.md).

Each node is a network namespace with its own UTS host name (node1..node3),
joined by a bridge in a fourth namespace, ctl, where slurmctld and Prometheus
run. Addresses exist only inside these namespaces (10.210.0.0/24); nothing is
routed anywhere else, and everything is torn down at the end, also on failure.

1. Each node runs slurmd and an agent (`residency serve --gate`). Recorded
   captured traces (bench/make_captured_traces.py: three workflows, one host
   name per node) go into each agent through the capture package's own sender
   (tests/fleet/feed_agent.py); every agent replays them and reaches its
   verdicts. Prometheus (file_sd listing the three agents) scrapes them.
2. The nightly gate: `residency slurm submit --traces-from` all three agents
   fans a sweep out over the three nodes. Mid-sweep node2 dies: its slurmd,
   shard tasks and agent are SIGKILLed and its link goes down. Prometheus
   shows it down and the agent-down alert fires; Slurm marks the node down;
   `slurm resubmit --failed` finishes on the other two; the merged results
   equal a local sweep of the same inputs figure for figure.
3. node2 comes back: every trace its agent acknowledged is in its store.

The agent-down rule is the one in dashboards/prometheus/rules.yml, with its
`for` cut from 2m to 5s so the test need not wait two minutes.

Usage: multinode_test.py RESIDENCY_BIN SOURCE_ROOT. Exit 0 pass, 1 fail, 77
skipped (not root, no network namespaces, or no Slurm/munge/Prometheus).
"""
import ctypes
import json
import os
import pathlib
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

BIN = os.path.abspath(sys.argv[1])
ROOT = pathlib.Path(sys.argv[2]).resolve()
TOKEN = "fleet-token"
NET = "10.210.0"
CTL_IP = f"{NET}.1"
NODES = ["node1", "node2", "node3"]
CLONE_NEWNET = 0x40000000
T0 = time.time()


def log(msg):
    print(f"[{time.time() - T0:6.1f} s] {msg}", flush=True)


def fail(msg):
    raise AssertionError(msg)


def sh(*args, check=True, **kw):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        fail(f"{' '.join(map(str, args))}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    return r


def http(url, body=None, token=None, timeout=10):
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_for(what, pred, seconds, step=0.25):
    deadline = time.time() + seconds
    last = None
    while time.time() < deadline:
        try:
            if pred():
                return
        except (OSError, ValueError, KeyError, sqlite3.Error) as e:
            last = e
        time.sleep(step)
    fail(f"timed out after {seconds} s waiting for {what}" + (f" (last error: {last})" if last else ""))


class Fleet:
    """The namespaces, their links and host names; every process started in them."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.prefix = f"rzfleet{os.getpid()}"
        self.names = {"ctl": f"{self.prefix}-ctl", **{n: f"{self.prefix}-{n}" for n in NODES}}
        self.uts = {k: tmp / f"uts-{k}" for k in self.names}
        self.made = []
        self.procs = []
        self.libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.root_net = os.open("/proc/self/ns/net", os.O_RDONLY)

    def ip(self, node):
        return CTL_IP if node == "ctl" else f"{NET}.{11 + NODES.index(node)}"

    def up(self):
        for key, ns in self.names.items():
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            self.uts[key].touch()
            sh("unshare", f"--uts={self.uts[key]}", "hostname", "ctl" if key == "ctl" else key)
        ctl = self.names["ctl"]
        sh("ip", "-n", ctl, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", ctl, "addr", "add", f"{CTL_IP}/24", "dev", "br0")
        sh("ip", "-n", ctl, "link", "set", "br0", "up")
        for i, node in enumerate(NODES):
            # Both ends are made inside the namespaces: the machine's own
            # network never sees an interface or an address of the test.
            sh("ip", "link", "add", "name", f"v{i + 1}", "netns", ctl, "type", "veth", "peer", "name", "eth0",
               "netns", self.names[node])
            sh("ip", "-n", ctl, "link", "set", f"v{i + 1}", "master", "br0", "up")
            sh("ip", "-n", self.names[node], "addr", "add", f"{self.ip(node)}/24", "dev", "eth0")
            sh("ip", "-n", self.names[node], "link", "set", "eth0", "up")
        # This process moves into ctl: it reaches every node from there.
        fd = os.open(f"/run/netns/{ctl}", os.O_RDONLY)
        if self.libc.setns(fd, CLONE_NEWNET) != 0:
            fail(f"setns into {ctl}: errno {ctypes.get_errno()}")
        os.close(fd)

    def on(self, node, *cmd):
        return ["nsenter", f"--net=/run/netns/{self.names[node]}", f"--uts={self.uts[node]}", "--", *map(str, cmd)]

    def start(self, node, name, *cmd, env=None):
        out = open(self.tmp / f"{name}.log", "w")
        p = subprocess.Popen(self.on(node, *cmd), stdout=out, stderr=subprocess.STDOUT, env=env)
        self.procs.append(p)
        return p

    def kill_node(self, node):
        """SIGKILL everything in the node's namespace (slurmd, job steps, the agent), then its link goes down."""
        pids = sh("ip", "netns", "pids", self.names[node], check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        sh("ip", "-n", self.names[node], "link", "set", "eth0", "down")
        return len(pids)

    def down(self):
        if self.libc.setns(self.root_net, CLONE_NEWNET) != 0:
            print(f"warning: setns back to the root namespace: errno {ctypes.get_errno()}")
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        for ns in self.made:
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(0.3)
        for ns in self.made:
            sh("ip", "netns", "del", ns, check=False)
        for f in self.uts.values():
            if f.exists():
                sh("umount", f, check=False)
        left = [ns for ns in sh("ip", "netns", "list", check=False).stdout.split() if ns.startswith(self.prefix)]
        if left:
            print(f"warning: namespaces left over: {left}")


def slurm_conf(s, port):
    nodes = "\n".join(f"NodeName={n} NodeAddr={NET}.{11 + i} CPUs=2 RealMemory=4000 State=UNKNOWN"
                      for i, n in enumerate(NODES))
    return f"""ClusterName=residency-fleet
SlurmctldHost=ctl({CTL_IP})
SlurmUser=root
SlurmdUser=root
SlurmctldPort={port}
SlurmdPort={port + 1}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={s}/munge-run/munge.socket.2
StateSaveLocation={s}/state
SlurmdSpoolDir={s}/spool/%n
SlurmctldPidFile={s}/run/slurmctld.pid
SlurmdPidFile={s}/run/slurmd-%n.pid
SlurmctldLogFile={s}/log/slurmctld.log
SlurmdLogFile={s}/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=0
SlurmctldTimeout=30
SlurmdTimeout=10
InactiveLimit=0
KillWait=5
MinJobAge=300
SlurmdParameters=config_overrides
{nodes}
PartitionName=fleet Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def main():
    missing = [c for c in ("ip", "unshare", "nsenter", "slurmctld", "slurmd", "munged", "mungekey", "sbatch",
                           "prometheus") if not shutil.which(c)]
    if missing:
        print(f"SKIPPED: needs {', '.join(missing)} (iproute2, util-linux, Slurm, munge, Prometheus)")
        sys.exit(77)
    if os.geteuid() != 0:
        print("SKIPPED: network namespaces and the test cluster need root")
        sys.exit(77)
    probe = f"rzprobe{os.getpid()}"
    if sh("ip", "netns", "add", probe, check=False).returncode != 0:
        print("SKIPPED: this machine cannot make network namespaces (ip netns add failed)")
        sys.exit(77)
    sh("ip", "netns", "del", probe, check=False)

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="residency-fleet-"))
    os.chmod(tmp, 0o755)  # munged checks o+x on every folder above its socket
    fleet = Fleet(tmp)
    munged = None
    ok = False
    try:
        fleet.up()
        log("namespaces up: ctl, node1, node2, node3 on a bridge in ctl")

        # Munge (a unix socket: one daemon serves every namespace) and Slurm.
        s = tmp / "slurm"
        for d in ("munge", "munge-run", "state", "spool", "run", "log"):
            (s / d).mkdir(parents=True, exist_ok=True)
        os.chmod(s / "munge", 0o700)
        sh("mungekey", "--create", f"--keyfile={s}/munge/munge.key")
        sh("munged", f"--key-file={s}/munge/munge.key", f"--socket={s}/munge-run/munge.socket.2",
           f"--pid-file={s}/munge-run/munged.pid", f"--log-file={s}/log/munged.log", f"--seed-file={s}/munge/seed")
        munged = s / "munge-run" / "munged.pid"
        port = 18000 + (os.getpid() % 500) * 2
        (s / "slurm.conf").write_text(slurm_conf(s, port))
        env = dict(os.environ, SLURM_CONF=str(s / "slurm.conf"))
        os.environ["SLURM_CONF"] = str(s / "slurm.conf")
        fleet.start("ctl", "slurmctld", "slurmctld", "-D", "-f", s / "slurm.conf", env=env)
        for n in NODES:
            fleet.start(n, f"slurmd-{n}", "slurmd", "-D", "-f", s / "slurm.conf", "-N", n, env=env)
        wait_for("three idle Slurm nodes", lambda: sh("sinfo", "-h", "-N", "-o", "%N %T", check=False)
                 .stdout.split().count("idle") == 3, 60)
        log("Slurm: slurmctld on ctl, slurmd on node1-3, all idle")

        # Agents with a gate, one per node.
        (tmp / "token").write_text(TOKEN + "\n")
        (tmp / "gate.json").write_text(json.dumps({
            "profiles": ["captured", "rtx5060-16g"], "baseline": "captured",
            "candidates": ["comfy-classic", {"name": "no-pin", "flags": ["--disable-pinned-memory"]}],
            "metric": "makespan", "threshold": 5}))
        agents = {}
        for n in NODES:
            agents[n] = f"http://{fleet.ip(n)}:9464"
            fleet.start(n, f"agent-{n}", BIN, "serve", "--listen", f"{fleet.ip(n)}:9464", "--data", tmp / n / "data",
                        "--token-file", tmp / "token", "--gate", tmp / "gate.json")
        for n in NODES:
            wait_for(f"agent on {n}", lambda n=n: http(agents[n] + "/healthz")[0] == 200, 30)
        log("agents up on node1-3 with --gate")

        # Prometheus in ctl: the three agents through file_sd, the project's rules.
        prom = tmp / "prom"
        shutil.copytree(ROOT / "dashboards" / "prometheus", prom)
        for f in (prom / "agents").glob("*.json"):
            f.unlink()
        (prom / "agents" / "fleet.json").write_text(json.dumps(
            [{"targets": [f"{fleet.ip(n)}:9464" for n in NODES], "labels": {"rack": "test"}}]))
        cfg = (prom / "prometheus.yml").read_text()
        for a, b in (("scrape_interval: 15s", "scrape_interval: 1s"), ("evaluation_interval: 15s", "evaluation_interval: 1s"),
                     ("refresh_interval: 30s", "refresh_interval: 1s")):
            cfg = cfg.replace(a, b)
        (prom / "prometheus.yml").write_text(cfg)
        rules = (prom / "rules.yml").read_text()
        down = rules.index("alert: ResidencyAgentDown")
        rules = rules[:down] + rules[down:].replace("for: 2m", "for: 5s", 1)
        (prom / "rules.yml").write_text(rules)
        api = f"http://{CTL_IP}:9090"
        fleet.start("ctl", "prometheus", "prometheus", f"--config.file={prom / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address={CTL_IP}:9090")

        def query(expr):
            status, body = http(api + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
            doc = json.loads(body)
            if status != 200 or doc.get("status") != "success":
                raise ValueError(f"query {expr!r}: HTTP {status}")
            return doc["data"]["result"]

        # The agents are watched before traffic comes (a counter's first rise is
        # seen only from a scrape that read it at zero).
        wait_for("Prometheus scraping all three agents", lambda: len(query('up{job="residency-agents"} == 1')) == 3, 60)
        log("Prometheus scrapes the three agents")

        # Recorded captured traffic, fed through the capture package's sender.
        acknowledged = {}
        workflows = {"node1": "sdxl", "node2": "wan22", "node3": "spark"}
        for n in NODES:
            recorded = tmp / "recorded" / n
            sh(sys.executable, ROOT / "bench" / "make_captured_traces.py", "--out", recorded, "--workflow",
               workflows[n], "--host", f"comfy-{n}", "--traces", "2", "--prompts", "2")
            traces = sorted(recorded.glob("*.jsonl"))
            r = sh(*fleet.on(n, sys.executable, ROOT / "tests" / "fleet" / "feed_agent.py", tmp / "spool" / n,
                             agents[n], tmp / "token", *traces))
            acknowledged[n] = json.loads(r.stdout.strip().splitlines()[-1])
            if len(acknowledged[n]) != len(traces):
                fail(f"{n}: the sender delivered {acknowledged[n]} of {len(traces)} traces")
        log(f"captured traces delivered through the capture sender: "
            f"{', '.join(f'{n} {len(v)}' for n, v in acknowledged.items())}")
        for n in NODES:
            def replayed(n=n):
                g = json.loads(http(agents[n] + "/v1/gate")[1])
                return g["queue"]["queued"] + g["queue"]["running"] == 0 and g["queue"]["done"] == 2 and \
                    len(g["verdicts"]) == 2 * 2 * 2
            wait_for(f"{n}'s agent to replay its traces under the gate", replayed, 120)
        verdicts = {n: json.loads(http(agents[n] + "/v1/gate")[1])["verdicts"] for n in NODES}
        spark_new_oom = [v for v in verdicts["node3"] if v["verdict"] == "new_oom"]
        if not spark_new_oom:
            fail(f"node3: comfy-classic on its DGX Spark traffic should newly OOM: {verdicts['node3']}")
        log(f"every agent replayed its traffic: {sum(len(v) for v in verdicts.values())} verdicts "
            f"(node3: comfy-classic newly OOMs on {len(spark_new_oom)} profile/trace pairs, ComfyUI #10896)")
        wait_for("the gate's verdicts in Prometheus",
                 lambda: len(query('residency_gate_verdicts_total{verdict="new_oom"}')) > 0, 30)
        wait_for("the new-OOM alert on captured traffic",
                 lambda: any(a["labels"]["alertname"] == "ResidencyCandidateNewOomOnCapturedTraffic" and
                             a["state"] == "firing"
                             for a in json.loads(http(api + "/api/v1/alerts")[1])["data"]["alerts"]), 30)
        log("Prometheus: 3 agents up, ResidencyCandidateNewOomOnCapturedTraffic firing")

        # 2. The nightly gate over the three nodes.
        job = tmp / "job"
        seeds = [str(i) for i in range(1, 9)]
        sub = sh(BIN, "slurm", "submit", "--traces-from", *agents.values(), "--token-file", tmp / "token",
                 "--profiles", "rtx5060-16g", "rtx4090-64g", "--policies", "comfy-aug2026", "comfy-classic",
                 "--seeds", *seeds, "--shards", "6", "--out", job, "--partition", "fleet", env=env)
        log(sub.stdout.strip().replace("\n", "; "))
        array = json.loads((job / "submissions.jsonl").read_text().splitlines()[0])["array_job"]

        def shard_on(node):
            out = sh("squeue", "-h", "-r", "-j", array, "-o", "%i %T %N", check=False, env=env).stdout.split("\n")
            for line in out:
                parts = line.split()
                if len(parts) == 3 and parts[1] == "RUNNING" and parts[2] == node:
                    return int(parts[0].split("_")[1])
            return None

        def node2_mid_shard():
            i = shard_on("node2")
            if i is None:
                return False
            db = job / "shards" / f"shard-{i}.db"
            return db.exists() and sqlite3.connect(db).execute("select count(*) from runs").fetchone()[0] >= 1
        wait_for("a shard on node2 running with runs stored", node2_mid_shard, 120, step=0.05)
        killed = fleet.kill_node("node2")
        log(f"node2 killed mid-sweep: {killed} processes SIGKILLed (slurmd, shard tasks, agent), link down")

        wait_for("Prometheus to see node2's agent down",
                 lambda: [r["metric"]["instance"] for r in query('up{job="residency-agents"} == 0')] ==
                 [f"{fleet.ip('node2')}:9464"], 30)
        wait_for("ResidencyAgentDown firing for node2",
                 lambda: any(a["labels"]["alertname"] == "ResidencyAgentDown" and a["state"] == "firing" and
                             a["labels"]["instance"] == f"{fleet.ip('node2')}:9464"
                             for a in json.loads(http(api + "/api/v1/alerts")[1])["data"]["alerts"]), 30)
        log("Prometheus: node2's agent down, ResidencyAgentDown firing")

        wait_for("Slurm to mark node2 down and its shards failed",
                 lambda: "failed" in sh(BIN, "slurm", "status", "--out", job, env=env, check=False).stdout, 120, step=1)
        status = sh(BIN, "slurm", "status", "--out", job, env=env, check=False).stdout
        failed = [line.split()[1] for line in status.splitlines() if " failed " in line]
        log(f"Slurm: shards {', '.join(failed)} failed with node2; node states: "
            + sh("sinfo", "-h", "-N", "-o", "%N=%T", env=env, check=False).stdout.replace("\n", " "))
        r = sh(BIN, "slurm", "resubmit", "--out", job, "--failed", env=env)
        log(r.stdout.strip())
        again = r.stdout.split("as array job ")[1].split()[0]
        wait_for("the resubmitted shards and the merge on node1 and node3",
                 lambda: sh(BIN, "slurm", "status", "--out", job, "--require-merged", env=env,
                            check=False).returncode == 0, 240, step=1)
        status = sh(BIN, "slurm", "status", "--out", job, env=env).stdout
        log(status.strip().splitlines()[-1])
        nodes_used = sh("sqlite3", job / "results.db", "select distinct host from runs order by 1").stdout.split()
        if nodes_used != NODES:
            fail(f"runs were stored by {nodes_used}, not by all three nodes")
        ctl_log = (s / "log" / "slurmctld.log").read_text()
        resubmitted_on = sorted({line.split("NodeList=")[1].split()[0] for line in ctl_log.splitlines()
                                 if f"Allocate JobId={again}_" in line})
        if not resubmitted_on or "node2" in resubmitted_on:
            fail(f"the resubmitted shards ran on {resubmitted_on}")
        log(f"the resubmitted shards ran on {', '.join(resubmitted_on)}")

        # The merged results equal a local sweep figure for figure.
        spec = json.loads((job / "job.json").read_text())
        sh(BIN, "sweep", "--traces", *spec["traces"], "--profiles", *spec["profiles"], "--policies",
           *spec["policies"], "--seeds", *map(str, spec["seeds"]), "--db", tmp / "local.db", "-q")
        q = ("select t.hash, p.hash, o.hash, seed, outcome, makespan_ns, load_ns, disk_read_bytes, peak_host_bytes, "
             "peak_device_bytes, peak_ram_bytes, event_log_hash from runs r join traces t on t.id = r.trace_id "
             "join profiles p on p.id = r.profile_id join policies o on o.id = r.policy_id order by 1, 2, 3, 4")
        merged = sqlite3.connect(job / "results.db").execute(q).fetchall()
        local = sqlite3.connect(tmp / "local.db").execute(q).fetchall()
        if merged != local:
            fail(f"merged results differ from a local sweep: {len(merged)} vs {len(local)} runs")
        log(f"merged results ({len(merged)} runs, stored by {', '.join(nodes_used)}) equal a local sweep figure "
            "for figure")
        for cand in ("comfy-classic",):
            c = sh(BIN, "compare", "--db", job / "results.db", "--baseline", "captured", "--candidate", cand, check=False)
            if c.returncode != 1 or "NEW-OOM" not in c.stdout:
                fail(f"the merged gate should fail comfy-classic with NEW-OOM:\n{c.stdout}{c.stderr}")
        log("the merged gate fails comfy-classic (NEW-OOM on the captured DGX Spark traffic), like a local sweep")

        # 3. node2 comes back: what its agent acknowledged is all there.
        sh("ip", "-n", fleet.names["node2"], "link", "set", "eth0", "up")
        fleet.start("node2", "agent-node2-again", BIN, "serve", "--listen", f"{fleet.ip('node2')}:9464", "--data",
                    tmp / "node2" / "data", "--token-file", tmp / "token", "--gate", tmp / "gate.json")
        wait_for("node2's agent back", lambda: http(agents["node2"] + "/healthz")[0] == 200, 30)
        stored = {t["name"] for t in json.loads(http(agents["node2"] + "/v1/traces")[1])}
        want = {name[:-len(".jsonl")] for name in acknowledged["node2"]}
        if not want <= stored:
            fail(f"node2 acknowledged {sorted(want)} but stores {sorted(stored)}")
        wait_for("Prometheus to see node2 up again",
                 lambda: len(query('up{job="residency-agents"} == 1')) == 3, 30)
        log(f"node2 is back: its store holds all {len(want)} traces it acknowledged; 3 agents up")
        ok = True
    except AssertionError as e:
        print(f"FAIL: {e}")
        for f in sorted(tmp.glob("*.log")) + sorted((tmp / "slurm" / "log").glob("*.log")):
            tail = f.read_text(errors="replace").splitlines()[-8:]
            print(f"--- {f.name}:\n" + "\n".join(tail))
    finally:
        fleet.down()
        if munged and munged.exists():
            try:
                os.kill(int(munged.read_text()), signal.SIGTERM)
            except (ValueError, ProcessLookupError):
                pass
        shutil.rmtree(tmp, ignore_errors=True)
    log("PASS: the three-node fleet" if ok else "the three-node fleet test failed")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
