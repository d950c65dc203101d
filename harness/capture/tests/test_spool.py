"""The spool against a tiny stdlib HTTP server standing in for `residency serve`."""
import http.server
import json
import os
import shutil
import tempfile
import threading
import time
import unittest

from comfyui.capture import Capture
from comfyui.settings import Settings
from comfyui.spool import Sender, Spool, trace_name
from tests.helpers import free_port


class FakeAgent:
    """POST /v1/traces answers with the next status in `statuses` (then 201)."""

    def __init__(self, statuses=(), port=0):
        self.statuses = list(statuses)
        self.requests = []
        agent = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                agent.requests.append((self.path, dict(self.headers), body))
                status = agent.statuses.pop(0) if agent.statuses else 201
                out = json.dumps({"error": "nope"} if status >= 400 else {"created": status == 201}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()



class SpoolTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.spool = Spool(os.path.join(self.tmp, "spool"))
        self.token = os.path.join(self.tmp, "token")
        with open(self.token, "w") as f:
            f.write("s3cret\n")

    def trace(self, name, body='{"format":"residency-trace","version":1,"name":"x"}\n'):
        path = os.path.join(self.tmp, name + ".jsonl")
        with open(path, "w") as f:
            f.write(body)
        return self.spool.add(path)

    def agent(self, statuses=(), port=0):
        a = FakeAgent(statuses, port)
        self.addCleanup(a.close)
        return a

    def test_acknowledged_traces_are_removed(self):
        a = self.agent([201, 200])
        p1, p2 = self.trace("comfyui-1"), self.trace("comfyui-2", "other\n")
        s = Sender(self.spool, a.url + "/", self.token)
        self.assertTrue(s.send_pending())
        self.assertEqual(self.spool.pending(), [])
        self.assertEqual(s.delivered, ["comfyui-1.jsonl", "comfyui-2.jsonl"])
        path, headers, body = a.requests[0]
        self.assertEqual(path, "/v1/traces?name=comfyui-1")
        self.assertEqual(headers["Authorization"], "Bearer s3cret")
        self.assertEqual(headers["Content-Type"], "application/x-ndjson")
        self.assertEqual(body, b'{"format":"residency-trace","version":1,"name":"x"}\n')

    def test_rejected_trace_moves_aside_with_its_reason(self):
        a = self.agent([400, 201])
        self.trace("comfyui-1")
        self.trace("comfyui-2")
        with self.assertLogs("residency.capture", "WARNING"):
            self.assertTrue(Sender(self.spool, a.url, self.token).send_pending())
        self.assertEqual(self.spool.pending(), [])
        rej = sorted(os.listdir(self.spool.rejected_dir))
        self.assertEqual(rej, ["comfyui-1.jsonl", "comfyui-1.jsonl.reason"])
        with open(os.path.join(self.spool.rejected_dir, "comfyui-1.jsonl.reason")) as f:
            self.assertEqual(f.read(), 'HTTP 400: {"error": "nope"}\n')

    def test_retryable_answers_keep_the_trace(self):
        for status in (429, 500, 503, 401):
            a = self.agent([status])
            self.trace("comfyui-1")
            with self.assertLogs("residency.capture", "WARNING"):
                self.assertFalse(Sender(self.spool, a.url, self.token).send_pending())
            self.assertEqual(len(self.spool.pending()), 1, status)
            self.assertFalse(os.path.exists(self.spool.rejected_dir))

    def test_agent_down_then_up(self):
        port = free_port()
        self.trace("comfyui-1")
        s = Sender(self.spool, "http://127.0.0.1:%d" % port, self.token, backoff_min=0.05, backoff_max=0.2)
        with self.assertLogs("residency.capture", "WARNING") as logs:
            s.start()
            self.addCleanup(s.stop)
            time.sleep(0.5)                        # several failed tries, one warning
        self.assertEqual(len(self.spool.pending()), 1)
        self.assertEqual(len([l for l in logs.output if "unreachable" in l]), 1)
        a = self.agent(port=port)
        deadline = time.time() + 10
        while self.spool.pending() and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.spool.pending(), [])
        self.assertEqual(len(a.requests), 1)

    def test_unreadable_token_keeps_traces(self):
        a = self.agent()
        self.trace("comfyui-1")
        with self.assertLogs("residency.capture", "WARNING"):
            self.assertFalse(Sender(self.spool, a.url, os.path.join(self.tmp, "missing")).send_pending())
        self.assertEqual(a.requests, [])
        self.assertEqual(len(self.spool.pending()), 1)

    def test_names(self):
        self.assertEqual(trace_name("/x/comfyui-20261130T1-p12-001.jsonl"), "comfyui-20261130T1-p12-001")
        self.assertEqual(trace_name("/x/.odd name!.jsonl"), "t.odd_name_")
        self.assertEqual(len(trace_name("/x/" + "a" * 100 + ".jsonl")), 64)


class CaptureFeedTest(unittest.TestCase):
    def test_start_resends_what_is_left_and_new_traces_follow(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp, True)
        a = FakeAgent()
        self.addCleanup(a.close)
        settings = Settings(capture_dir=os.path.join(tmp, "cap"), agent_url=a.url, rotate=1)
        left = Spool(settings.spool_dir)
        os.makedirs(left.dir)
        with open(os.path.join(left.dir, "comfyui-old.jsonl"), "w") as f:
            f.write("old\n")
        cap = Capture(settings)
        cap.start()
        self.addCleanup(cap.sender.stop)
        rec = cap.recorder
        rec.prompt_begin()
        rec.prompt_end()                          # rotate=1: finished, spooled, sent
        deadline = time.time() + 10
        while len(a.requests) < 2 and time.time() < deadline:
            time.sleep(0.05)
        names = sorted(r[0].split("name=")[1] for r in a.requests)
        self.assertEqual(len(names), 2)
        self.assertEqual(names[1], "comfyui-old")
        self.assertTrue(os.path.exists(os.path.join(settings.capture_dir, names[0] + ".jsonl")))
        deadline = time.time() + 5
        while left.pending() and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(left.pending(), [])


if __name__ == "__main__":
    unittest.main()
