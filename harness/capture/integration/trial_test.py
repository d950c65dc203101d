#!/usr/bin/python3
"""The real-server trial (issue 29) against the real ComfyUI (COMFYUI_DIR, CPU),
each server start its own process (trial_server.py):

1. A crashed run's partial trace is recovered when the restarted server has
   the same PID: both runs are PID 1 in a fresh PID namespace (unshare).
2. A CPU capture replayed on its own machine (--profile captured: the
   cpu-host base, no page-locking) is within 15 % on its first prompt.
3. A .pt file a custom node reads with comfy.utils.load_torch_file keeps its
   identity in the trace (not memory:...).
4. A prompt with a node error ends with status failed, an interrupted one
   with status interrupted; replay and fidelity leave both out.
5. A SIGKILL during the first prompt leaves a readable .abandoned file (the
   header and the prompt's beginning) and the next start says so in its log.
6. No unload frees more than its model holds (the trace reader refuses it;
   every trace here replays).

Usage: trial_test.py [--skip-code N]. Exit 0 pass, 1 fail; without COMFYUI_DIR
or torch: "SKIPPED: ..." and the skip code (ctest: 77)."""
import argparse
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
SERVER = os.path.join(HERE, "trial_server.py")
PY = "/usr/bin/python3"


def server(mode, capture_dir, models_dir, pid1=False):
    """Runs one server start; the die-* modes are SIGKILLed from outside once
    they say they wait inside their prompt (as an OOM kill or a container
    stop would end them)."""
    cmd = [PY, SERVER, mode, capture_dir, models_dir]
    if pid1:
        cmd = ["unshare", "--pid", "--fork", "--mount-proc"] + cmd
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                         env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    out = []
    for line in p.stdout:
        out.append(line)
        if "waiting to be killed" in line:
            os.killpg(p.pid, signal.SIGKILL)
            break
    p.wait(timeout=600)
    out.append(p.stdout.read())
    return p.returncode, "".join(out)


def residency(*args):
    binary = os.environ.get("RESIDENCY_BIN") or os.path.join(REPO, "build", "release", "residency")
    env = dict(os.environ, RESIDENCY_DATA_DIR=os.path.join(REPO, "traces"))
    r = subprocess.run([binary] + list(args), capture_output=True, text=True, env=env, timeout=300)
    return r.returncode, r.stdout + r.stderr


def events_of(path):
    with open(path) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    return lines[0], lines[1:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-code", type=int, default=0)
    opts = ap.parse_args()
    if not os.environ.get("COMFYUI_DIR"):
        print("SKIPPED: COMFYUI_DIR is not set (a checkout of ComfyUI v0.8.0, e.g. the pollockjj/ComfyUI mirror)")
        return opts.skip_code
    if subprocess.run([PY, "-c", "import torch"], capture_output=True).returncode != 0:
        print("SKIPPED: no torch for /usr/bin/python3 (apt-get install python3-torch)")
        return opts.skip_code
    tmp = tempfile.mkdtemp(prefix="residency-trial-")
    os.chmod(tmp, 0o755)
    problems = []
    check = lambda ok, what: print(("ok   " if ok else "FAIL ") + what) or (None if ok else problems.append(what))  # noqa: E731
    try:
        models = os.path.join(tmp, "models")
        code, out = server("build", os.path.join(tmp, "unused", "capture"), models)
        if code != 0:
            print(out[-3000:])
            return 1

        # 2, 3, 4, 6: a normal run of four prompts.
        cap = os.path.join(tmp, "normal", "capture")
        code, out = server("normal", cap, models)
        traces = sorted(glob.glob(os.path.join(cap, "*.jsonl")))
        check(code == 0 and len(traces) == 1, "a normal run exits 0 and finishes one trace (%d, %s)" % (code, traces))
        if code != 0 or not traces:
            print(out[-3000:])
            return 1
        header, events = events_of(traces[0])
        statuses = [e.get("status", "ok") for e in events if e["type"] == "prompt_end"]
        check(statuses == ["ok", "failed", "interrupted", "ok"],
              "prompt_end statuses say how each prompt ended: %s" % statuses)
        pt = [f["path"] for e in events if e["type"] == "model" for f in e["files"] if f["path"].endswith(".pt")]
        mem = [e["model"] for e in events if e["type"] == "model" and e["files"][0]["path"].startswith("memory:")]
        check(len(pt) >= 1 and "Upscaler" not in " ".join(mem),
              "the .pt file a custom node reads keeps its identity: %s (memory models: %s)" % (pt, mem))
        sizes = {e["model"]: sum(f["bytes"] for f in e["files"]) for e in events if e["type"] == "model"}
        over = [e for e in events if e["type"] == "unload" and
                (e["freed_bytes"] > sizes[e["model"]] or e.get("remaining_bytes", 0) > sizes[e["model"]])]
        check(not over, "no unload frees or leaves more than its model holds (%d over)" % len(over))
        code, out = residency("fidelity", "--captured", traces[0], "--json")
        doc = json.loads(out[out.index("{"):]) if code == 0 and "{" in out else {}
        prompts = doc.get("prompts", [])
        print(out if code != 0 else "fidelity --captured: " + json.dumps(
            [(p["prompt"], p["status"], round(100 * p.get("error", 0), 1)) for p in prompts]))
        check(code == 0 and [p["status"] for p in prompts] == ["ok", "failed", "interrupted", "ok"],
              "fidelity leaves the failed and the interrupted prompt out")
        first = prompts[0] if prompts else {}
        check("error" in first and abs(first["error"]) <= 0.15,
              "the CPU capture's first prompt on its own machine is within 15 %%: %+.1f %%"
              % (100 * first.get("error", float("nan"))))
        code, out = residency("replay", traces[0], "--profile", "captured")
        check(code == 0 and "policy captured = comfy-classic + --cpu" in out and "the server failed it" in out
              and "the server interrupted it" in out,
              "replay on its own machine runs under the server's settings and marks the prompts the server did not finish")

        # 1: a crash, then a restart with the same PID (1, in a PID namespace).
        if subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True).returncode:
            check(False, "unshare --pid works here (root)")
        else:
            cap = os.path.join(tmp, "pid1", "capture")
            code, out = server("die-after-one", cap, models, pid1=True)
            check(code != 0 and "pid 1\n" in out and glob.glob(os.path.join(cap, "*.partial")),
                  "a server that is PID 1 dies in its second prompt, leaving a partial trace")
            code, out = server("restart", cap, models, pid1=True)
            recovered = [t for t in glob.glob(os.path.join(cap, "*.jsonl"))]
            kept = []
            for t in recovered:
                _, ev = events_of(t)
                kept.append(sum(1 for e in ev if e["type"] == "prompt_end"))
            check(code == 0 and "pid 1\n" in out and "recovered" in out and sorted(kept) == [1, 1],
                  "restarted as PID 1 again, it recovers the dead run's finished prompt (traces: %s)" % kept)

        # 5: killed in the first prompt.
        cap = os.path.join(tmp, "first", "capture")
        code, out = server("die-in-first", cap, models)
        code, out = server("restart", cap, models)
        abandoned = glob.glob(os.path.join(cap, "*.abandoned"))
        ok = len(abandoned) == 1 and os.path.getsize(abandoned[0]) > 0
        if ok:
            header, ev = events_of(abandoned[0])
            ok = header.get("source") == "captured:comfyui" and ev and ev[0]["type"] == "prompt_begin"
        check(ok and "died before finishing a prompt" in out,
              "a run killed in its first prompt leaves a readable .abandoned file, named in the next start's log")
    finally:
        if not problems:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept for a look: " + tmp)
    if problems:
        return 1
    print("PASS: the real-server trial's six cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
