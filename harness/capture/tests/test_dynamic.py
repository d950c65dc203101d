"""Capture on ComfyUI's dynamic VRAM path, against a STAND-IN of the newest
API (tests/fakes.py, build(dynamic=True)): the real ModelPatcherDynamic needs
an NVIDIA or ROCm GPU and comfy-aimdo, so it cannot run here
(scripts/gpu-check.sh runs the real one where a GPU and a CUDA torch exist).

The stand-in follows the newest API's documented signatures and call order
(docs/CAPTURE.md; in our own words): LoadedModel.model_load
-> partially_load -> the subclass's load, which stages the weights; weights
become resident as they are used; comfy-aimdo evicts other models on demand;
detach -> unpatch_model -> the subclass's partially_unload."""
import inspect
import unittest

from comfyui.hooks import Hooks
from tests import fakes
from tests.helpers import CaptureCase, strip, well_formed

MB = 1024 * 1024

# The newest API's signatures, as documented (not copied from its source).
DOCUMENTED = {
    "load": ["self", "device_to", "lowvram_model_memory", "force_patch_weights", "full_load", "dirty"],
    "partially_load": ["self", "device_to", "extra_memory", "force_patch_weights"],
    "partially_unload": ["self", "device_to", "memory_to_free", "force_patch_weights"],
    "unpatch_model": ["self", "device_to", "unpatch_weights"],
}


class DynamicVramTest(CaptureCase):
    def setUp(self):
        super().setUp()
        self.hooks.uninstall()
        self.m = fakes.build(dynamic=True)
        self.hooks = Hooks(self.cap).install(fakes.targets(self.m))
        self.addCleanup(self.hooks.uninstall)

    def patcher(self, name, sizes):
        return self.m.mp.ModelPatcherDynamic(fakes.Net(sizes, name))

    def test_the_stand_in_keeps_the_documented_signatures(self):
        dyn = self.m.mp.ModelPatcherDynamic
        for name, params in DOCUMENTED.items():
            self.assertIn(name, vars(dyn), "%s is the subclass's own" % name)
            original = getattr(getattr(dyn, name), "__residency_original__", getattr(dyn, name))
            self.assertEqual(list(inspect.signature(original).parameters), params, name)

    def test_the_subclass_methods_are_hooked_and_named(self):
        self.assertIn("ModelPatcherDynamic.load", self.hooks.installed)
        self.assertIn("ModelPatcherDynamic.partially_unload", self.hooks.installed)
        from comfyui import dynamic_vram_line
        self.assertIn("dynamic VRAM on", dynamic_vram_line(self.m.mp, self.hooks))
        classic = Hooks(self.cap)
        classic.dynamic_class = None
        self.assertIn("no dynamic VRAM", dynamic_vram_line(fakes.build().mp, classic))

    def test_loads_are_dynamic_and_on_demand_eviction_is_seen_at_node_edges(self):
        m = self.m
        a, b = self.patcher("WAN21", [MB, MB]), self.patcher("WAN21", [MB, MB])

        def sample(p):
            def run():
                m.mm.load_models_gpu([p])
                p.use(2 * MB)     # the forward pass makes it resident; aimdo evicts the other
                return ("latent",)
            return run

        prompt = {"1": {"class_type": "KSampler", "fn": sample(a)}, "2": {"class_type": "KSampler", "fn": sample(b)}}
        m.execution.PromptExecutor().execute(prompt, "p", {}, ["2"])
        m.mm.unload_all_models()
        _, events = well_formed(self, self.cap.recorder.finish())
        loads = strip(events, "load")
        self.assertEqual([e["mode"] for e in loads], ["dynamic", "dynamic"])   # never "full": model_lowvram is unset
        unloads = strip(events, "unload")
        on_demand = [u for u in unloads if u["reason"] == "on_demand"]
        # 3 MB of VRAM: b's 2 MB pushed 1 MB of a out, with no Python call.
        self.assertEqual(on_demand, [{"type": "unload", "model": "WAN21", "freed_bytes": MB, "remaining_bytes": MB,
                                      "reason": "on_demand"}])
        # unload_all_models -> detach -> unpatch_model -> partially_unload: each byte freed once.
        freed = {}
        for u in unloads:
            freed[u["model"]] = freed.get(u["model"], 0) + u["freed_bytes"]
        self.assertEqual(freed, {"WAN21": 2 * MB, "WAN21#2": 2 * MB})
        self.assertTrue(all(u["reason"] in ("on_demand", "unload_all_models") for u in unloads), unloads)

    def test_a_partial_model_unload_goes_through_the_subclass(self):
        m = self.m
        p = self.patcher("Flux2", [MB, MB, MB])
        m.mm.load_models_gpu([p])
        p.use(3 * MB)
        self.cap.recorder.sample_resident()
        lm = m.mm.current_loaded_models[0]
        self.assertFalse(lm.model_unload(memory_to_free=MB))   # enough freed: no detach
        _, events = self.finish()
        self.assertEqual(strip(events, "unload"), [{"type": "unload", "model": "Flux2", "freed_bytes": MB,
                                                    "remaining_bytes": 2 * MB, "reason": "model_unload"}])


if __name__ == "__main__":
    unittest.main()
