#!/usr/bin/env python3
"""Capture on the real dynamic VRAM path, for a GPU machine (scripts/gpu-check.sh).

Needs COMFYUI_DIR (a ComfyUI >= 0.16 checkout), a CUDA build of torch >= 2.8
and comfy-aimdo installed; otherwise it prints "SKIPPED: ..." and exits 77.
NOT RUN on the machines this project is developed on (no GPU): it follows
the newest ComfyUI's documented start-up order (main.py: comfy_aimdo's
control.init, then comfy.model_patcher.CoreModelPatcher set to
ModelPatcherDynamic), then loads a small model twice through
load_models_gpu with a forward pass each, and checks what the capture wrote:
loads recorded as "dynamic" (not "full"), the ModelPatcherDynamic hooks
installed, and a well-formed trace that `residency replay` reads.

Usage: dynamic_vram_check.py OUTDIR   (RESIDENCY_BIN: the residency binary)
"""
import asyncio
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = os.path.join(os.path.dirname(HERE), "comfyui")


def skip(why):
    print("SKIPPED: " + why)
    sys.exit(77)


def main():
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
    comfy_dir = os.environ.get("COMFYUI_DIR")
    if not comfy_dir:
        skip("COMFYUI_DIR is not set (a ComfyUI >= 0.16 checkout)")
    try:
        import torch
    except ImportError:
        skip("no torch")
    if not torch.cuda.is_available():
        skip("no CUDA device for torch %s" % torch.__version__)
    try:
        import comfy_aimdo.control as aimdo
    except ImportError:
        skip("comfy-aimdo is not installed (dynamic VRAM needs it)")
    sys.path.insert(0, comfy_dir)
    os.chdir(comfy_dir)
    os.environ["RESIDENCY_CAPTURE_DIR"] = os.path.join(out, "capture-dynamic")
    import comfy.options
    comfy.options.enable_args_parsing()
    sys.argv = [sys.argv[0], "--enable-dynamic-vram"]
    try:
        aimdo.init()
    except TypeError:
        aimdo.init(None)
    import comfy.model_management as mm
    import comfy.model_patcher as mp
    import comfy.memory_management as mem
    if not hasattr(mp, "ModelPatcherDynamic"):
        skip("this ComfyUI has no ModelPatcherDynamic")
    mp.CoreModelPatcher = mp.ModelPatcherDynamic
    mem.aimdo_enabled = True
    import nodes
    link = os.path.join(out, "custom_nodes", "residency-capture")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if not os.path.islink(link):
        os.symlink(PACKAGE, link)
    if not asyncio.run(nodes.load_custom_node(link)):
        print("FAIL: the capture package did not load")
        return 1
    cap = sys.modules[link.replace(".", "_x_")].CAPTURE
    import comfy.ops
    ops = comfy.ops.disable_weight_init
    dev = mm.get_torch_device()
    nets = []
    for _ in range(2):
        net = torch.nn.Sequential(*[ops.Linear(2048, 2048) for _ in range(8)])
        p = mp.CoreModelPatcher(net, load_device=dev, offload_device=torch.device("cpu"))
        nets.append(p)
    rec = cap.recorder
    rec.prompt_begin()
    for i, p in enumerate(nets):
        rec.node_begin(str(i + 1), "DynamicCheck", False)
        mm.load_models_gpu([p])
        x = torch.randn(4, 2048, device=dev)
        p.model(x)
        rec.node_end()
        rec.sample_resident()
    rec.prompt_end()
    trace = rec.finish()
    with open(trace) as f:
        events = [json.loads(l) for l in f if l.strip()][1:]
    modes = [e["mode"] for e in events if e["type"] == "load"]
    hooked = [w for w in cap.patches.installed if w.startswith("ModelPatcherDynamic.")]
    print("loads: %s; hooked: %s; unloads: %s" % (modes, hooked,
          [(e["reason"], e["freed_bytes"]) for e in events if e["type"] == "unload"]))
    ok = modes == ["dynamic", "dynamic"] and "ModelPatcherDynamic.load" in hooked
    binary = os.environ.get("RESIDENCY_BIN")
    if binary:
        r = subprocess.run([binary, "replay", trace, "--profile", "captured"], capture_output=True, text=True)
        print(r.stdout[-1500:] + r.stderr[-500:])
        ok = ok and r.returncode == 0
    print("PASS: dynamic VRAM captured" if ok else "FAIL: dynamic VRAM capture")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
