#!/usr/bin/python3
"""The fleet feed against the real agent (`residency serve`), loopback only.

1. A trace is captured (the capture package hooked into the fake ComfyUI
   modules of tests/fakes.py; no torch needed) while the agent is DOWN: it
   waits in the spool.
2. The agent starts, behind a small proxy on the URL the sender uses. The
   proxy hands the sender's POST to the agent, reads the agent's answer (the
   trace is committed then), kills the agent with SIGKILL and drops the
   connection without passing the answer on: the worst moment.
3. The trace is still in the spool. The agent restarts on the same data;
   the sender resends; the agent answers 200 (same content hash).
4. GET /v1/traces lists it exactly once, with the exact bytes; a second
   trace then goes straight through.

Usage: agent_feed_test.py [RESIDENCY_BINARY]  (default: $RESIDENCY_BIN or
build/release/residency). Exit 0 pass, 1 fail, 77 skipped (no binary).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
CAPTURE_ROOT = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(CAPTURE_ROOT))
sys.path.insert(0, CAPTURE_ROOT)

from comfyui.capture import Capture  # noqa: E402
from comfyui.hooks import Hooks  # noqa: E402
from comfyui.settings import Settings  # noqa: E402
from tests import fakes  # noqa: E402
from tests.helpers import free_port  # noqa: E402

MB = 1024 * 1024


def say(msg):
    print("[%6.2f s] %s" % (time.time() - T0, msg), flush=True)


def recv_http(sock):
    """One HTTP message (headers + Content-Length body) from a socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


class Proxy:
    """Loopback TCP proxy; in kill mode the first POST's answer is swallowed
    and the agent SIGKILLed before the sender hears anything."""

    def __init__(self, port, upstream_port, on_kill):
        self.upstream_port = upstream_port
        self.on_kill = on_kill
        self.kill_next = True
        self.swallowed = None
        self.swallowed_body = b""
        self.relayed = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(client,), daemon=True).start()

    def handle(self, client):
        try:
            request = recv_http(client)
            up = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30)
            up.sendall(request)
            answer = recv_http(up)
            up.close()
            if self.kill_next and request.startswith(b"POST"):
                self.kill_next = False
                self.swallowed_body = answer.partition(b"\r\n\r\n")[2]
                self.swallowed = answer.split(b"\r\n", 1)[0].decode()
                self.on_kill()
                client.close()           # no answer reaches the sender
                return
            self.relayed.append(answer.split(b"\r\n", 1)[0].decode())
            client.sendall(answer)
        except OSError:
            pass
        finally:
            client.close()

    def close(self):
        self.sock.close()


class Agent:
    def __init__(self, binary, port, data, token_file, log):
        self.cmd = [binary, "serve", "--listen", "127.0.0.1:%d" % port, "--data", data, "--token-file", token_file]
        self.port = port
        self.log = log
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, RESIDENCY_DATA_DIR=os.path.join(REPO, "traces")))
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % self.port, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the agent did not come up: %s" % " ".join(self.cmd))

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def traces(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/v1/traces" % self.port, timeout=10) as r:
            return json.loads(r.read())

    def body(self, trace_id):
        with urllib.request.urlopen("http://127.0.0.1:%d/v1/traces/%s" % (self.port, trace_id), timeout=10) as r:
            return r.read()


def capture_prompt(m, tmp, n):
    """One prompt through the hooked fake ComfyUI: a model file, a LoRA, a load."""
    path = os.path.join(tmp, "model-%d.safetensors" % n)
    fakes.write_safetensors(path, [MB, 2 * MB])
    base = m.sd.load_diffusion_model(path)
    lora = os.path.join(tmp, "lora-%d.safetensors" % n)
    fakes.write_safetensors(lora, [4096], names=["lora.layer0.weight"])
    patched = m.sd.load_lora_for_models(base, None, m.utils.load_torch_file(lora), 1.0, 0)[0]
    ex = m.execution.PromptExecutor()
    ex.execute({"1": {"class_type": "KSampler", "fn": lambda: m.mm.load_models_gpu([patched]) or (1,)}},
               "p%d" % n, {}, ["1"])
    m.mm.unload_all_models()
    return base, patched


def wait_for(pred, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def main():
    binary = (sys.argv[1] if len(sys.argv) > 1 else None) or os.environ.get("RESIDENCY_BIN") or \
        os.path.join(REPO, "build", "release", "residency")
    if not os.access(binary, os.X_OK):
        print("SKIPPED: no residency binary at %s" % binary)
        return 77
    return scenario(binary)


def scenario(binary):
    tmp = tempfile.mkdtemp(prefix="residency-capture-agent-")
    token = os.path.join(tmp, "token")
    with open(token, "w") as f:
        f.write("capture-test-token\n")
    data = os.path.join(tmp, "agent-data")
    agent_port, proxy_port = free_port(), free_port()
    log = open(os.path.join(tmp, "agent.log"), "w")
    agent = Agent(binary, agent_port, data, token, log)
    settings = Settings(capture_dir=os.path.join(tmp, "capture"), agent_url="http://127.0.0.1:%d" % proxy_port,
                        token_file=token, rotate=1)
    cap = Capture(settings, sender_options={"backoff_min": 0.2, "backoff_max": 1.0})
    m = fakes.build()
    hooks = Hooks(cap).install(fakes.targets(m))
    cap.start()
    failures = []

    def check(ok, what):
        say(("ok: " if ok else "FAIL: ") + what)
        if not ok:
            failures.append(what)

    keep = capture_prompt(m, tmp, 1)
    spooled = cap.spool.pending()
    check(len(spooled) == 1, "agent down: the finished trace waits in the spool (%s)"
          % [os.path.basename(p) for p in spooled])
    name = os.path.basename(spooled[0])[: -len(".jsonl")] if spooled else None
    with open(spooled[0], "rb") as f:
        body = f.read()
    time.sleep(1.5)
    check(len(cap.spool.pending()) == 1, "still spooled after the sender's retries against a closed port")

    agent.start()
    say("agent started on 127.0.0.1:%d (pid %d), behind a proxy on :%d" % (agent_port, agent.proc.pid, proxy_port))
    proxy = Proxy(proxy_port, agent_port, agent.kill)
    cap.sender.wake()
    if not wait_for(lambda: proxy.swallowed is not None, 30):
        check(False, "the sender POSTed to the agent")
        return finish(failures, tmp, hooks, cap, agent, proxy)
    if proxy.swallowed and " 400 " in proxy.swallowed:
        finish([], tmp, hooks, cap, agent, proxy, code=1)
        print("FAIL: the agent rejected the captured trace: %s %s" % (proxy.swallowed, proxy.swallowed_body[:300]))
        return 1
    say("the agent answered '%s'; the proxy swallowed it and SIGKILLed the agent (exit %s)"
        % (proxy.swallowed, agent.proc.returncode))
    time.sleep(0.5)
    check(len(cap.spool.pending()) == 1, "the sender never got the answer: the trace is still spooled")

    agent.start()
    say("agent restarted on the same data (pid %d)" % agent.proc.pid)
    check(wait_for(lambda: not cap.spool.pending(), 30), "the sender resent it and the spool emptied")
    check(proxy.relayed[:1] == ["HTTP/1.1 200 OK"], "the restarted agent answered the resend with 200 "
          "(already stored, by content hash): %s" % proxy.relayed[:1])
    stored = [t for t in agent.traces() if t["name"] == name]
    check(len(stored) == 1, "GET /v1/traces lists %s exactly once (%d)" % (name, len(stored)))
    if stored:
        check(agent.body(stored[0]["id"]) == body, "the stored bytes are the captured trace's")

    keep2 = capture_prompt(m, tmp, 2)
    check(wait_for(lambda: len(agent.traces()) == 2, 30), "a second trace went straight through (2 stored)")
    check(not os.path.exists(cap.spool.rejected_dir), "nothing rejected")
    del keep, keep2
    return finish(failures, tmp, hooks, cap, agent, proxy)


def finish(failures, tmp, hooks, cap, agent, proxy, code=None):
    hooks.uninstall()
    cap.sender.stop()
    proxy.close()
    if agent.proc and agent.proc.poll() is None:
        agent.proc.terminate()
        agent.proc.wait()
    if code is not None:
        return code
    if failures:
        print("FAIL (%d); kept %s" % (len(failures), tmp))
        return 1
    print("PASS: the trace survived an agent SIGKILLed mid-POST and is stored exactly once")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    import logging
    logging.basicConfig(level=logging.WARNING, format="           capture log: %(message)s")
    T0 = time.time()
    code = main()
    sys.stdout.flush()
    os._exit(code)
