#!/usr/bin/env python3
"""Overhead of the ComfyUI capture hooks (harness/capture/comfyui), per
recorded event. Goal: <= 50 us per event (docs/CAPTURE.md).

The hooked functions are the stand-ins of harness/capture/tests/fakes.py:
ComfyUI's signatures and memory bookkeeping with no real work, so the time
measured is the hooks' own. The same workload runs unhooked and hooked; the
difference over the events written is the cost per event. Traces go to a
temp dir, as in a server run (buffered, flushed at each prompt's end).

  bench/capture_overhead.py [--prompts N] [--repeats R]
"""
import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness", "capture"))

from comfyui.capture import Capture  # noqa: E402
from comfyui.hooks import Hooks  # noqa: E402
from comfyui.settings import Settings  # noqa: E402
from tests import fakes  # noqa: E402

MB = 1024 * 1024


def setup(m, tmp):
    """Three models from files (text encoder, unet, VAE) and a LoRA, as a
    txt2img workflow has."""
    models = []
    for name, cls_sizes in (("te", [MB] * 24), ("unet", [2 * MB] * 64), ("vae", [MB] * 16)):
        path = os.path.join(tmp, name + ".safetensors")
        fakes.write_safetensors(path, cls_sizes, pad_data=False)
        models.append(m.sd.load_diffusion_model(path))
    lora = os.path.join(tmp, "lora.safetensors")
    fakes.write_safetensors(lora, [4096] * 8, names=["lora.layer%d.weight" % i for i in range(8)], pad_data=False)
    models[1] = m.sd.load_lora_for_models(models[1], None, m.utils.load_torch_file(lora), 1.0, 0)[0]
    return models


def workload(m, models, prompts):
    """Per prompt: encode (load TE), sample (load unet, 20 steps, an offload),
    decode (load VAE), save; then unload everything."""
    te, unet, vae = models
    sigmas = types.SimpleNamespace(shape=(21,))
    ex = m.execution.PromptExecutor()
    prompt = {
        "1": {"class_type": "CLIPTextEncode", "fn": lambda: m.mm.load_models_gpu([te]) or ("cond",)},
        "2": {"class_type": "KSampler", "fn": lambda: (m.samplers.CFGGuider(unet).outer_sample(None, None, None, sigmas),
                                                       unet.partially_unload("cpu", 4 * MB))},
        "3": {"class_type": "VAEDecode", "fn": lambda: m.mm.load_models_gpu([vae]) or ("image",)},
        "4": {"class_type": "SaveImage", "fn": lambda: ("saved",)},
    }
    for i in range(prompts):
        ex.caches.outputs.store.clear()
        ex.execute(prompt, "p%d" % i, {}, ["4"])
        m.mm.unload_all_models()


def run(prompts, hooked, tmp):
    m = fakes.build()
    cap = hooks = None
    if hooked:
        cap = Capture(Settings(capture_dir=os.path.join(tmp, "cap%d" % time.perf_counter_ns()), rotate=50))
        hooks = Hooks(cap).install(fakes.targets(m))
    models = setup(m, tmp)
    gc.collect()
    gc.disable()
    t = time.perf_counter_ns()
    workload(m, models, prompts)
    elapsed = time.perf_counter_ns() - t
    gc.enable()
    events = 0
    if hooked:
        cap.recorder.finish()
        events = sum(len(open(p).read().split("\n")) - 2 for p in cap.writer.finished)
        hooks.uninstall()
        assert cap.writer.finished and cap.guard.enabled, cap.guard.failure
    return elapsed, events


def passthrough_cost(calls):
    """A hook that records nothing: ModelPatcher.detach(unpatch_all=False),
    which ComfyUI calls from every patcher's __del__."""
    m = fakes.build()
    p = m.mp.ModelPatcher(fakes.Net([MB]))
    res = []
    for hooked in (False, True):
        hooks = None
        if hooked:
            tmp = tempfile.mkdtemp()
            hooks = Hooks(Capture(Settings(capture_dir=tmp))).install(fakes.targets(m))
        t = time.perf_counter_ns()
        for _ in range(calls):
            p.detach(False)
        res.append(time.perf_counter_ns() - t)
        if hooks:
            hooks.uninstall()
            shutil.rmtree(tmp, True)
    return (res[1] - res[0]) / calls / 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="capture-bench-")
    try:
        base, hooked, events = [], [], 0
        for _ in range(a.repeats):
            base.append(run(a.prompts, False, tmp)[0])
            t, events = run(a.prompts, True, tmp)
            hooked.append(t)
        b, h = min(base), min(hooked)
        per_event = (h - b) / events / 1000.0
        per_prompt_us = (h - b) / a.prompts / 1000.0
        events_per_prompt = events / a.prompts
        print("capture overhead (python %s, %d prompts x %d repeats, best of each):"
              % (sys.version.split()[0], a.prompts, a.repeats))
        print("  workload unhooked      %10.1f ms" % (b / 1e6))
        print("  workload hooked        %10.1f ms" % (h / 1e6))
        print("  events recorded        %10d   (%.1f per prompt)" % (events, events_per_prompt))
        print("  overhead per event     %10.1f us   (goal <= 50 us)" % per_event)
        print("  overhead per prompt    %10.1f us" % per_prompt_us)
        for wall in (1.0, 10.0):
            print("  share of a %4.0f s prompt %9.4f %%" % (wall, per_prompt_us / (wall * 1e6) * 100))
        print("  pass-through hook      %10.2f us per call (no event: detach(unpatch_all=False))"
              % passthrough_cost(20000))
        return 0 if per_event <= 50 else 1
    finally:
        shutil.rmtree(tmp, True)


if __name__ == "__main__":
    sys.exit(main())
