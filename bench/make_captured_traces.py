#!/usr/bin/env python3
"""Writes captured traces in the capture hook's shape (docs/CAPTURE.md): a
header with a machine record, model definitions, per-node loads, computes,
releases, unloads and node spans, and prompts with measured wall times.

They stand in for a fleet's recorded traffic in the fleet tests, the
Prometheus test and the agent benchmark. The workflows and their sizes are the
bundled examples' (Wan 2.2 14B t2v, SDXL, Flux.2 dev on a DGX Spark: public
Hugging Face file sizes, docs/IMPORT.md); step times and the measured prompt
times are synthetic, deterministic for a seed (the measured time is the
workflow's compute plus a load estimate, times 0.85-1.15).

  make_captured_traces.py --out DIR [--workflow wan22|sdxl|spark] [--traces N]
                          [--prompts P] [--host H] [--server 'ComfyUI 0.38.1']
                          [--flag=--reserve-vram --flag=1.5 ...] [--seed S]
"""
import argparse
import json
import pathlib
import random

GB = 1000 ** 3
GiB = 1024 ** 3

MACHINES = {
    "wan22": {"device": "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync", "vram": 24 * GiB, "ram": 64 * GiB,
              "unified": False, "cpu_cores": 16, "torch": "2.9.0+cu128"},
    "sdxl": {"device": "cuda:0 NVIDIA GeForce RTX 4070 : cudaMallocAsync", "vram": 12 * GiB, "ram": 32 * GiB,
             "unified": False, "cpu_cores": 8, "torch": "2.9.0+cu128"},
    "spark": {"device": "cuda:0 NVIDIA GB10 : cudaMallocAsync", "ram": 128 * GiB, "unified": True,
              "cpu_cores": 20, "torch": "2.9.0+cu130"},
}

# (model id, file, bytes, tensor count)
MODELS = {
    "wan22": [("UMT5XXL", "umt5_xxl_fp8_e4m3fn_scaled.safetensors", 6_735_906_897, 242),
              ("WAN21", "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors", int(14.3 * GB), 1095),
              ("WAN21#2", "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors", int(14.3 * GB), 1095),
              ("WanVAE", "wan_2.1_vae.safetensors", 253_815_318, 194)],
    "sdxl": [("SDXLClipModel", "sd_xl_base_1.0.safetensors#clip", int(1.39 * GB), 517),
             ("SDXL", "sd_xl_base_1.0.safetensors#unet", int(5.14 * GB), 1680),
             ("AutoencoderKL", "sd_xl_base_1.0.safetensors#vae", int(0.33 * GB), 248)],
    "spark": [("Mistral3", "mistral_3_small_flux2_bf16.safetensors", int(35.6 * GB), 363),
              ("Flux2", "flux2-dev.safetensors", int(64.4 * GB), 1200),
              ("Flux2VAE", "flux2-vae.safetensors", int(0.336 * GB), 120)],
}

# Nodes of one prompt: (class, models loaded in it, steps, seconds per step)
NODES = {
    "wan22": [("CLIPTextEncode", ["UMT5XXL"], 1, 0.9), ("KSamplerAdvanced", ["WAN21"], 10, 2.4),
              ("KSamplerAdvanced", ["WAN21#2"], 10, 2.4), ("VAEDecode", ["WanVAE"], 1, 6.5)],
    "sdxl": [("CLIPTextEncode", ["SDXLClipModel"], 1, 0.12), ("KSampler", ["SDXL"], 25, 0.11),
             ("VAEDecode", ["AutoencoderKL"], 1, 0.6)],
    "spark": [("CLIPTextEncode", ["Mistral3"], 1, 3.0), ("SamplerCustomAdvanced", ["Flux2"], 28, 4.2),
              ("VAEDecode", ["Flux2VAE"], 1, 2.1)],
}


def trace(workflow, name, host, server, flags, prompts, rng):
    machine = dict(MACHINES[workflow], server=server, flags=flags, host=host)
    header = {"format": "residency-trace", "version": 1, "name": name, "source": "captured:comfyui",
              "description": f"written by bench/make_captured_traces.py: {prompts} prompts of {workflow}",
              "machine": machine}
    lines = [header]
    t = 0
    sizes = {m: b for m, _, b, _ in MODELS[workflow]}

    def emit(obj):
        nonlocal t
        t += 1000
        obj["at_ns"] = t
        lines.append(obj)

    for m, path, b, count in MODELS[workflow]:
        emit({"type": "model", "model": m, "files": [{"path": path, "bytes": b, "tensor_count": count,
                                                     "tensor_distribution": "skewed", "tensor_seed": len(path)}]})
    resident = set()
    device = machine.get("vram", machine["ram"]) * 0.8
    for p in range(1, prompts + 1):
        emit({"type": "prompt_begin", "prompt": p})
        wall = 0.0
        for i, (cls, models, steps, step_s) in enumerate(NODES[workflow]):
            load_s = 0.0
            for m in models:
                # The server makes room the way ComfyUI does: what else is on
                # the device is unloaded (partially, for a big one) first.
                need = sizes[m]
                held = sum(sizes[o] for o in resident if o != m)
                for o in sorted(resident - {m}):
                    if held + need <= device:
                        break
                    emit({"type": "unload", "model": o, "freed_bytes": sizes[o], "remaining_bytes": 0,
                          "reason": "free_memory"})
                    resident.discard(o)
                    held -= sizes[o]
                if m not in resident:
                    load_s += sizes[m] / (2.0 * GB if p == 1 else 6.0 * GB)
                emit({"type": "load", "model": m, "mode": "full"})
                resident.add(m)
            step_ns = int(step_s * rng.uniform(0.95, 1.05) * 1e9)
            emit({"type": "compute", "models": models, "steps": steps, "step_ns": step_ns, "activation_bytes": 0})
            for m in models:
                emit({"type": "release", "model": m})
            node_s = load_s + steps * step_ns / 1e9
            emit({"type": "node", "prompt": p, "node": str(i + 1), "class": cls, "duration_ns": int(node_s * 1e9),
                  "cached": False})
            wall += node_s
        emit({"type": "prompt_end", "prompt": p, "measured_wall_ns": int(wall * rng.uniform(0.85, 1.15) * 1e9)})
    return "".join(json.dumps(obj, separators=(",", ":")) + "\n" for obj in lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--workflow", choices=sorted(MODELS), default="wan22")
    ap.add_argument("--traces", type=int, default=1)
    ap.add_argument("--prompts", type=int, default=3)
    ap.add_argument("--host", default="render-01")
    ap.add_argument("--server", default="ComfyUI 0.38.1")
    ap.add_argument("--flag", action="append", default=[], help="a server flag or value, in order (--flag=--cache-ram)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"{a.seed}-{a.host}-{a.workflow}")
    for k in range(1, a.traces + 1):
        name = f"comfyui-{a.host}-{a.workflow}-{a.seed}-{k:03d}"
        (out / f"{name}.jsonl").write_text(trace(a.workflow, name, a.host, a.server, a.flag, a.prompts, rng))
    print(f"wrote {a.traces} captured {a.workflow} trace(s) of {a.prompts} prompts from host {a.host} into {out}")


if __name__ == "__main__":
    main()
