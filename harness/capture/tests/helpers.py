"""Shared set-up: a Capture writing into a temp dir, hooked into fake ComfyUI modules."""
import json
import os
import shutil
import tempfile
import unittest

from comfyui.capture import Capture
from comfyui.hooks import Hooks
from comfyui.settings import Settings
from tests import fakes

MACHINE = {"device": "cuda:0 Fake GPU", "vram": 24 * 1024 ** 3, "ram": 64 * 1024 ** 3, "unified": False,
           "cpu_cores": 8, "torch": "2.9.0", "server": "ComfyUI 0.8.0", "flags": ["--lowvram"], "host": "box"}


def read_trace(path):
    with open(path) as f:
        lines = [l for l in f.read().split("\n") if l.strip()]
    objs = [json.loads(l) for l in lines]
    return objs[0], objs[1:]


def strip(events, *types):
    """Events without at_ns, optionally only of these types."""
    out = []
    for e in events:
        if types and e["type"] not in types:
            continue
        e = dict(e)
        e.pop("at_ns", None)
        out.append(e)
    return out


class CaptureCase(unittest.TestCase):
    rotate = 50
    redact = False

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="capture-unit-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.m = fakes.build()
        self.settings = Settings(capture_dir=os.path.join(self.tmp, "cap"), rotate=self.rotate, redact=self.redact)
        self.cap = Capture(self.settings, machine_fn=lambda namer: dict(MACHINE, host=namer.host("box")))
        self.hooks = Hooks(self.cap).install(fakes.targets(self.m))
        self.addCleanup(self.hooks.uninstall)

    def model_file(self, name, sizes, names=None):
        path = os.path.join(self.tmp, name)
        fakes.write_safetensors(path, sizes, names=names)
        return path

    def finish(self):
        path = self.cap.recorder.finish()
        self.assertIsNotNone(path)
        return read_trace(path)


ALLOWED = {
    "model": {"model", "files"}, "load": {"model", "mode", "device_bytes"},
    "compute": {"models", "steps", "step_ns", "activation_bytes", "step_includes_streaming"}, "release": {"model"},
    "delete": {"model"}, "patch": {"model", "patch", "patched_bytes"}, "prompt_begin": {"prompt"},
    "prompt_end": {"prompt", "measured_wall_ns", "status"},
    "unload": {"model", "freed_bytes", "remaining_bytes", "reason"},
    "node": {"prompt", "node", "class", "duration_ns", "cached"},
}
REASONS = {"free_memory", "unload_all_models", "cleanup_models", "model_unload", "partially_unload",
           "finalizer", "on_demand", "other"}


def well_formed(test, path):
    """Every line compact JSON; the header; each event's fields, types, references,
    handles balanced, at_ns monotonic."""
    with open(path) as f:
        text = f.read()
    test.assertTrue(text.endswith("\n"))
    lines = text[:-1].split("\n")
    for line in lines:
        test.assertEqual(json.dumps(json.loads(line), separators=(",", ":")), line)
    header, events = read_trace(path)
    test.assertEqual(list(header)[:5], ["format", "version", "name", "source", "description"])
    test.assertEqual((header["format"], header["version"], header["source"]),
                     ("residency-trace", 1, "captured:comfyui"))
    test.assertRegex(header["name"], r"^[A-Za-z0-9._-]{1,64}$")
    defined, handles, last, sizes = set(), {}, 0, {}
    for e in events:
        t = e["type"]
        test.assertIn(t, ALLOWED)
        test.assertLessEqual(set(e) - {"type", "at_ns"}, ALLOWED[t], e)
        test.assertIsInstance(e["at_ns"], int)
        test.assertGreaterEqual(e["at_ns"], last)
        last = e["at_ns"]
        if t == "model":
            test.assertNotIn(e["model"], defined)
            defined.add(e["model"])
            sizes[e["model"]] = sum(f["bytes"] for f in e["files"])
            for f in e["files"]:
                test.assertGreater(f["bytes"], 0)
                test.assertEqual(sum(f["tensors"]), f["bytes"])
                test.assertTrue(all(isinstance(s, int) and s > 0 for s in f["tensors"]))
            continue
        for ref in ([e["model"]] if "model" in e else []) + e.get("models", []) + ([e["patch"]] if "patch" in e else []):
            test.assertIn(ref, defined, "%s used before its model line" % ref)
        if t == "load":
            test.assertIn(e["mode"], ("full", "partial", "dynamic"))
            test.assertEqual("device_bytes" in e, e["mode"] == "partial")
            handles[e["model"]] = handles.get(e["model"], 0) + 1
        elif t == "release":
            handles[e["model"]] -= 1
            test.assertGreaterEqual(handles[e["model"]], 0)
        elif t == "unload":
            test.assertIn(e["reason"], REASONS)
            test.assertLessEqual(e["freed_bytes"], sizes[e["model"]])
            test.assertLessEqual(e.get("remaining_bytes", 0), sizes[e["model"]])
        elif t == "node":
            test.assertIsInstance(e["cached"], bool)
            test.assertIsInstance(e["node"], str)
        elif t == "compute":
            test.assertGreaterEqual(e["steps"], 1)
    test.assertEqual({k: v for k, v in handles.items() if v}, {})
    return header, events


def free_port():
    """A loopback TCP port nobody listens on now."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
