"""Hooks pass everything through; a failing hook disables capture and changes
nothing for ComfyUI; what the hooks record."""
import asyncio
import gc
import logging
import types
import unittest

from comfyui.guard import Guard, wrap_async, wrap_sync
from comfyui.hooks import Hooks
from tests import fakes
from tests.helpers import CaptureCase, strip

MB = 1024 * 1024


class Boom(Exception):
    pass


class WrapperTest(unittest.TestCase):
    def test_result_and_arguments_pass_through(self):
        seen = []
        sentinel = object()

        def orig(a, b=2, *rest, **kw):
            seen.append((a, b, rest, kw))
            return sentinel

        w = wrap_sync(Guard(), orig, "orig", before=lambda a, k: "ctx", after=lambda c, a, k, r: None)
        self.assertIs(w(1, 3, 4, x=5), sentinel)
        self.assertEqual(seen, [(1, 3, (4,), {"x": 5})])
        self.assertEqual(w.__name__, "orig")
        self.assertIs(w.__residency_original__, orig)

    def test_exception_passes_through_unchanged(self):
        err = Boom("from ComfyUI")

        def orig():
            raise err

        calls = []
        w = wrap_sync(Guard(), orig, "orig", on_error=lambda c, a, k, e: calls.append(e))
        with self.assertRaises(Boom) as cm:
            w()
        self.assertIs(cm.exception, err)
        self.assertEqual(calls, [err])

    def test_async_pass_through(self):
        async def orig(x):
            if x < 0:
                raise Boom(x)
            return x * 2

        w = wrap_async(Guard(), orig, "orig", before=lambda a, k: None, after=lambda c, a, k, r: None)
        self.assertTrue(asyncio.iscoroutinefunction(w))
        self.assertEqual(asyncio.run(w(21)), 42)
        with self.assertRaises(Boom):
            asyncio.run(w(-1))

    def test_failing_before_or_after_disables_and_warns_once(self):
        g = Guard()

        def bad(*a):
            raise RuntimeError("capture bug")

        w = wrap_sync(g, lambda x: x + 1, "f", before=bad, after=bad)
        with self.assertLogs("residency.capture", logging.WARNING) as logs:
            self.assertEqual(w(1), 2)
            self.assertEqual(w(2), 3)
            wrap_sync(g, lambda: 0, "g", before=bad)()
        self.assertFalse(g.enabled)
        self.assertEqual(len(logs.output), 1)
        self.assertIn("capture bug", logs.output[0])

    def test_error_hook_failure_keeps_the_original_exception(self):
        g = Guard()

        def orig():
            raise Boom("original")

        def bad(*a):
            raise RuntimeError("capture bug")

        w = wrap_sync(g, orig, "f", on_error=bad)
        with self.assertLogs("residency.capture", logging.WARNING):
            with self.assertRaises(Boom):
                w()
        self.assertFalse(g.enabled)


class FailingHookTest(CaptureCase):
    def run_workload(self, m):
        """Some ComfyUI activity; returns results and ComfyUI's log lines."""
        with self.assertLogs("fakecomfy", logging.INFO) as logs:
            path = self.model_file("wan.safetensors", [MB, 2 * MB])
            p = m.sd.load_diffusion_model(path)
            r1 = m.mm.load_models_gpu([p])
            freed = p.partially_unload("cpu", MB)
            keys = p.clone().add_patches({"layer0.weight": (1,)})
            r2 = m.mm.free_memory(1e30, "cuda")
        return (r1, freed, keys, len(r2), p.loaded_size()), [l for l in logs.output]

    def test_failing_hook_changes_nothing_for_comfyui(self):
        plain = fakes.build()   # never hooked
        expected, expected_logs = self.run_workload(plain)

        def broken(*a, **k):
            raise RuntimeError("injected capture failure")

        self.cap.recorder.loaded = broken
        with self.assertLogs("residency.capture", logging.WARNING) as warn:
            got, got_logs = self.run_workload(self.m)
        self.assertEqual(got, expected)
        self.assertEqual(got_logs, expected_logs)
        self.assertFalse(self.cap.guard.enabled)
        self.assertEqual(len(warn.output), 1)
        self.assertIn("injected capture failure", warn.output[0])
        # After the failure nothing more is recorded.
        events_before = self.cap.writer.events
        self.m.mm.load_models_gpu([self.m.sd.load_diffusion_model(self.model_file("b.safetensors", [MB]))])
        self.assertEqual(self.cap.writer.events, events_before)

    def test_exception_from_comfyui_reaches_the_caller(self):
        err = Boom("OOM")

        def fail(self, *a, **k):
            raise err

        self.m.mp.ModelPatcher.partially_load = fail
        p = self.m.mp.ModelPatcher(fakes.Net([MB]))
        with self.assertRaises(Boom) as cm:
            self.m.mm.load_models_gpu([p])
        self.assertIs(cm.exception, err)
        self.assertTrue(self.cap.guard.enabled)


class RecordingTest(CaptureCase):
    def test_loads_unloads_patches_and_deletes(self):
        m = self.m
        path = self.model_file("wan.safetensors", [MB, 2 * MB, MB])
        p = m.sd.load_diffusion_model(path)
        m.mm.load_models_gpu([p])                       # full, outside a node: load + release
        p.partially_unload("cpu", MB)                   # an offload
        m.mm.unload_all_models()
        m.mm.LoadedModel(p).model_load(lowvram_model_memory=2 * MB)   # partial
        lora = p.clone()
        lora.add_patches({"layer1.weight": ("diff",), "missing": ("x",)})
        del p, lora
        gc.collect()
        header, events = self.finish()
        self.assertEqual(header["source"], "captured:comfyui")
        self.assertEqual(header["machine"]["flags"], ["--lowvram"])
        ev = strip(events)
        self.assertEqual(ev[0], {"type": "model", "model": "WAN21",
                                 "files": [{"path": path, "bytes": 4 * MB, "tensors": [MB, 2 * MB, MB]}]})
        self.assertEqual(ev[1:], [
            {"type": "load", "model": "WAN21", "mode": "full"},
            {"type": "release", "model": "WAN21"},
            {"type": "unload", "model": "WAN21", "freed_bytes": MB, "remaining_bytes": 3 * MB,
             "reason": "partially_unload"},
            {"type": "unload", "model": "WAN21", "freed_bytes": 3 * MB, "remaining_bytes": 0,
             "reason": "unload_all_models"},
            {"type": "load", "model": "WAN21", "mode": "partial", "device_bytes": 2 * MB},
            {"type": "release", "model": "WAN21"},
            {"type": "model", "model": "patch", "files": [{"path": "memory:patch", "bytes": 1, "tensors": [1]}]},
            {"type": "patch", "model": "WAN21", "patch": "patch", "patched_bytes": 2 * MB},
            {"type": "unload", "model": "WAN21", "freed_bytes": 2 * MB, "remaining_bytes": 0, "reason": "finalizer"},
            {"type": "delete", "model": "WAN21"},
        ])

    def test_unload_reason_is_the_outermost_call(self):
        p = self.m.mp.ModelPatcher(fakes.Net([MB, MB]))
        self.m.mm.load_models_gpu([p])
        self.m.mm.free_memory(MB, "cuda")          # model_unload -> partially_unload
        self.m.mm.free_memory(1e30, "cuda")        # model_unload -> detach
        _, events = self.finish()
        self.assertEqual([(e["reason"], e["freed_bytes"]) for e in events if e["type"] == "unload"],
                         [("free_memory", MB), ("free_memory", MB)])
        self.assertEqual(strip(events, "model")[0]["files"][0]["path"], "memory:TinyNet")

    def test_lora_file_becomes_the_patch_model(self):
        m = self.m
        base = m.sd.load_diffusion_model(self.model_file("wan.safetensors", [MB, MB]))
        lora_path = self.model_file("style_lora.safetensors", [4096, 4096],
                                    names=["lora.layer0.weight", "lora.layer1.weight"])
        sd = m.utils.load_torch_file(lora_path, safe_load=True)    # as LoraLoader does, outside a node here
        m.sd.load_lora_for_models(base, None, sd, 1.0, 0)
        m.sd.load_lora_for_models(base, None, sd, 0.5, 0)           # LoraLoader's cached dict: same file
        _, events = self.finish()
        models = {e["model"]: e for e in strip(events, "model")}
        self.assertEqual(models["LoRA"]["files"], [{"path": lora_path, "bytes": 8192, "tensors": [4096, 4096]}])
        self.assertEqual(strip(events, "patch"), [{"type": "patch", "model": "WAN21", "patch": "LoRA",
                                                   "patched_bytes": 2 * MB}] * 2)

    def test_checkpoint_split_by_prefix(self):
        # unet 2 tensors, text encoder 1, vae 1: one file, three models.
        path = self.model_file("sdxl.safetensors", [MB, MB, 2 * MB, 3 * MB])
        import json, struct
        with open(path, "r+b") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            h = json.loads(f.read(n))
        names = {"t0": "model.diffusion_model.a", "t1": "model.diffusion_model.b",
                 "t2": "conditioner.embedders.0.x", "t3": "first_stage_model.y"}
        h = {names.get(k, k): v for k, v in h.items()}
        raw = json.dumps(h).encode()
        raw += b" " * ((8 - len(raw) % 8) % 8)
        data_len = 7 * MB
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw + b"\0" * data_len)
        unet, clip, vae, _ = self.m.sd.load_checkpoint_guess_config(path)
        for p in (unet, clip.patcher, vae.patcher):
            self.m.mm.load_models_gpu([p])
        _, events = self.finish()
        files = {e["model"]: e["files"] for e in strip(events, "model")}
        self.assertEqual(files["SDXL"], [{"path": path + "#unet", "bytes": 2 * MB, "tensors": [MB, MB]}])
        self.assertEqual(files["SDXLClipModel"], [{"path": path + "#clip", "bytes": 2 * MB, "tensors": [2 * MB]}])
        self.assertEqual(files["AutoencoderKL"], [{"path": path + "#vae", "bytes": 3 * MB, "tensors": [3 * MB]}])

    def test_multi_file_clip(self):
        a = self.model_file("t5a.safetensors", [MB])
        b = self.model_file("t5b.safetensors", [2 * MB])
        clip = self.m.sd.load_clip([a, b])
        self.m.mm.load_models_gpu([clip.patcher])
        _, events = self.finish()
        self.assertEqual([f["path"] for f in strip(events, "model")[0]["files"]], [a, b])

    def test_prompt_nodes_compute_and_cached(self):
        m = self.m
        clock = [0]
        self.cap.recorder.clock = lambda: clock[0]
        self.cap.recorder.t0 = 0
        p = m.sd.load_diffusion_model(self.model_file("wan.safetensors", [MB]))
        # A load that takes 300 ns (hooks re-installed over the slow original).
        self.hooks.uninstall()
        orig = m.mm.load_models_gpu

        def slow_load(models, *a, **kw):
            clock[0] += 300
            return orig(models, *a, **kw)

        m.mm.load_models_gpu = slow_load
        self.hooks = Hooks(self.cap).install(fakes.targets(m))
        self.addCleanup(self.hooks.uninstall)

        def sampler():
            guider = m.samplers.CFGGuider(p)
            guider.outer_sample(None, None, None, types.SimpleNamespace(shape=(11,)))
            clock[0] += 1000                         # 1000 ns sampling
            return ("latent",)

        def encode():
            clock[0] += 50
            return ("cond",)

        prompt = {"1": {"class_type": "CLIPTextEncode", "inputs": {"text": "a secret prompt"}, "fn": encode},
                  "2": {"class_type": "KSampler", "inputs": {"seed": 1}, "fn": sampler}}
        ex = m.execution.PromptExecutor()
        ex.execute(prompt, "id-1", {}, ["2"])
        ex.caches.outputs.store.pop("2")
        ex.execute(prompt, "id-2", {}, ["2"])
        _, events = self.finish()
        ev = strip(events)
        self.assertNotIn("secret", repr(events))
        self.assertEqual([e["type"] for e in ev], [
            "prompt_begin", "compute", "node",                       # encode
            "model", "load", "compute", "release", "node",           # sampler
            "prompt_end",
            "prompt_begin", "node",                                  # encode cached
            "load", "compute", "release", "node", "prompt_end"])
        sample = [e for e in ev if e["type"] == "compute" and e["models"]][0]
        self.assertEqual(sample, {"type": "compute", "models": ["WAN21"], "steps": 10, "step_ns": 100,
                                  "activation_bytes": 0, "step_includes_streaming": True})
        nodes = strip(events, "node")
        self.assertEqual(nodes[0], {"type": "node", "prompt": 1, "node": "1", "class": "CLIPTextEncode",
                                    "duration_ns": 50, "cached": False})
        self.assertEqual(nodes[1]["duration_ns"], 1300)
        self.assertEqual(nodes[2], {"type": "node", "prompt": 2, "node": "1", "class": "CLIPTextEncode",
                                    "duration_ns": 0, "cached": True})
        ends = strip(events, "prompt_end")
        self.assertEqual(ends[0], {"type": "prompt_end", "prompt": 1, "measured_wall_ns": 1350})

    def test_time_reading_files_is_loading_not_compute(self):
        m = self.m
        clock = [0]
        self.cap.recorder.clock = lambda: clock[0]
        self.cap.recorder.t0 = 0
        self.hooks.uninstall()
        orig = m.utils.load_torch_file

        def slow_read(*a, **k):
            clock[0] += 700
            return orig(*a, **k)

        m.utils.load_torch_file = slow_read
        self.hooks = Hooks(self.cap).install(fakes.targets(m))
        self.addCleanup(self.hooks.uninstall)
        path = self.model_file("wan.safetensors", [MB])

        def loader():
            clock[0] += 20            # building the model
            return (m.sd.load_diffusion_model(path),)

        m.execution.PromptExecutor().execute({"1": {"class_type": "UNETLoader", "fn": loader}}, "p", {}, ["1"])
        _, events = self.finish()
        self.assertEqual(strip(events, "compute"), [{"type": "compute", "models": [], "steps": 1, "step_ns": 20,
                                                     "activation_bytes": 0, "step_includes_streaming": True}])
        self.assertEqual(strip(events, "node")[0]["duration_ns"], 720)

    def test_failing_prompt_still_ends(self):
        def bad():
            raise Boom("node failed")

        ex = self.m.execution.PromptExecutor()
        with self.assertRaises(Boom):
            ex.execute({"1": {"class_type": "Bad", "fn": bad}}, "p", {}, ["1"])
        _, events = self.finish()
        self.assertEqual([e["type"] for e in events][0], "prompt_begin")
        self.assertEqual(strip(events, "node")[0]["class"], "Bad")
        self.assertEqual(events[-1]["type"], "prompt_end")


if __name__ == "__main__":
    unittest.main()
