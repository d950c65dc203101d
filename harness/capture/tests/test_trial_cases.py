"""What a trial on the real ComfyUI v0.8.0 found (issue 29), each as a unit
test on the fake modules: failed and interrupted prompts say so; a rotated
file starts with what was still on the device; a file a custom node reads
with load_torch_file keeps its identity (and its time is loading); an unload
never frees more than the model holds. (Recovery after a restart with the
same pid, and a run killed in its first prompt: test_tracefile.py.)"""
import unittest

from tests import fakes
from tests.helpers import CaptureCase, strip, well_formed

MB = 1024 * 1024


class Interrupt(BaseException):
    pass


Interrupt.__name__ = "InterruptProcessingException"


class PromptStatusTest(CaptureCase):
    def test_failed_and_interrupted_prompts_say_so(self):
        m = self.m
        ex = m.execution.PromptExecutor()

        def ok():
            return (1,)

        def error_reported():
            ex.add_message("execution_error", {"node_id": "1"}, broadcast=False)   # ComfyUI reports, returns
            return (1,)

        def interrupted():
            raise Interrupt()

        ex.execute({"1": {"class_type": "Ok", "fn": ok}}, "p1", {}, ["1"])
        ex.caches.outputs.store.clear()
        ex.execute({"1": {"class_type": "Bad", "fn": error_reported}}, "p2", {}, ["1"])
        ex.caches.outputs.store.clear()
        with self.assertRaises(Interrupt):
            ex.execute({"1": {"class_type": "Stop", "fn": interrupted}}, "p3", {}, ["1"])
        _, events = well_formed(self, self.cap.recorder.finish())
        self.assertEqual([e.get("status", "ok") for e in strip(events, "prompt_end")], ["ok", "failed", "interrupted"])


class RotationCarriesResidentModels(CaptureCase):
    rotate = 1

    def test_a_rotated_file_starts_with_what_is_on_the_device(self):
        m = self.m
        base = m.sd.load_diffusion_model(self.model_file("wan.safetensors", [MB, MB]))
        ex = m.execution.PromptExecutor()
        for i in range(2):
            ex.caches.outputs.store.clear()
            ex.execute({"1": {"class_type": "KSampler", "fn": lambda: m.mm.load_models_gpu([base]) or (1,)}},
                       "p%d" % i, {}, ["1"])
        self.cap.recorder.finish()
        first, second = self.cap.writer.finished
        _, events = well_formed(self, second)
        # Before prompt 2 begins: the model, loaded as it was, released. A
        # replay pays no load in prompt 2 that the server never paid.
        self.assertEqual([e["type"] for e in strip(events)][:4], ["model", "load", "release", "prompt_begin"])
        self.assertEqual(strip(events, "load")[0], {"type": "load", "model": "WAN21", "mode": "full"})


class CustomNodeFilesTest(CaptureCase):
    def test_a_file_a_custom_node_reads_keeps_its_identity_and_its_time_is_loading(self):
        m = self.m
        clock = [0]
        rec = self.cap.recorder
        rec.clock = lambda: clock[0]
        rec.t0 = 0
        self.hooks.uninstall()
        orig = m.utils.load_torch_file

        def slow_read(*a, **k):
            clock[0] += 500
            return orig(*a, **k)

        m.utils.load_torch_file = slow_read
        from comfyui.hooks import Hooks
        self.hooks = Hooks(self.cap).install(fakes.targets(m))
        self.addCleanup(self.hooks.uninstall)
        path = self.model_file("upscaler.pt.safetensors", [2 * MB, MB])
        unrelated = self.model_file("vocab.safetensors", [4096])

        def custom_loader():
            sd = m.utils.load_torch_file(path)         # a custom node's own loader
            m.utils.load_torch_file(unrelated)         # read, but no model is made of it
            p = m.mp.ModelPatcher(fakes.Net([t._n for t in sd.values()], "Upscaler"))
            clock[0] += 30
            m.mm.load_models_gpu([p])
            self.keep = p
            return (p,)

        m.execution.PromptExecutor().execute({"1": {"class_type": "UpscaleModelLoader", "fn": custom_loader}},
                                             "p", {}, ["1"])
        _, events = well_formed(self, rec.finish())
        model = strip(events, "model")[0]
        self.assertEqual(model["files"][0]["path"], path)          # not memory:Upscaler
        self.assertEqual(model["files"][0]["bytes"], 3 * MB)
        compute = strip(events, "compute")[0]
        # 500 ns reading the model's file is loading (a replay reads it); the
        # 500 ns reading the other file and the 30 ns building stay compute.
        self.assertEqual(compute["step_ns"], 530)
        self.assertEqual(strip(events, "node")[0]["duration_ns"], 1030)


class NodeModelDiesTest(CaptureCase):
    def test_a_model_collected_while_its_node_runs_is_deleted_after_the_node(self):
        import gc
        m = self.m

        def own_model():
            p = m.mp.ModelPatcher(fakes.Net([MB], "Upscaler"))
            m.mm.load_models_gpu([p])
            m.mm.current_loaded_models.clear()   # the node keeps no reference; only its local does
            del p
            gc.collect()                          # collected inside the node
            m.mm.cleanup_models()                 # a quiet point while the node still runs
            return (1,)

        m.execution.PromptExecutor().execute({"1": {"class_type": "Own", "fn": own_model}}, "p", {}, ["1"])
        _, events = well_formed(self, self.cap.recorder.finish())
        types = [e["type"] for e in strip(events) if e.get("model") == "Upscaler" or "Upscaler" in e.get("models", [])]
        self.assertEqual(types, ["model", "load", "compute", "release", "unload", "delete"])


class UnloadSizesTest(CaptureCase):
    def test_an_unload_never_frees_more_than_the_model_holds(self):
        m = self.m
        p = m.sd.load_diffusion_model(self.model_file("wan.safetensors", [MB]))
        m.mm.load_models_gpu([p])
        # ComfyUI 0.8.0 counted a 4,000-byte buffer the state dict leaves out.
        p.model.model_loaded_weight_memory += 4000
        m.mm.unload_all_models()
        _, events = well_formed(self, self.cap.recorder.finish())
        self.assertEqual([u["freed_bytes"] for u in strip(events, "unload")], [MB])


if __name__ == "__main__":
    unittest.main()
