#!/usr/bin/env python3
"""Writes traces/profiles/*.json, traces/policies/*.json and traces/examples/*.jsonl.

The files are committed; this script documents where every number comes from
and regenerates them deterministically. File sizes are the public Hugging Face
sizes of the model files (Comfy-Org's repackaged repositories, Lightricks,
stabilityai, lodestones); where a size is not public the trace description
says it is an estimate. Tensor counts are synthesized
(tensor_count + distribution) because real header counts were not found.
"""
import json, os, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "traces")

def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")

# ---------------------------------------------------------------- profiles
COMMON_SRC = {
    "memcpy_per_thread": "measured here: memcpy 1 thread 9.4-12.7 GB/s (2-vCPU EPYC sandbox); ~10 GB/s per core design rule",
    "page_fault": "minor fault median ~1.0 us per 4 KiB (bare-metal i7; ddumbying.vercel.app, 'Page fault latency measurement')",
    "prefault_per_thread": "MADV_POPULATE_WRITE 8 threads ~7.6 GB/s (Mooncake#3939) -> ~1 GB/s per thread",
    "register_per_gib": "hipHostRegister of populated memory ~6 GB/s with 4K pages (ROCm/mori#679); no NVIDIA figure found, so this is an estimate",
    "register_unfaulted_per_gib": "cudaMallocHost 104 GB in 60 s (~1.7 GB/s, llama.cpp#28223)",
    "mmap_read": "naive mmap -> cudaMemcpy ~1 GB/s (1.5 with FADV_SEQUENTIAL) from a 7 GB/s drive (pytorch#117805)",
    "pcie_h2d_pageable": "pageable 1 GB in 149 ms ~6.7 GB/s (cupy#3450)",
}

def nvme_gen4(latency_us=80):
    # Gen4 x4 NVMe: ~7 GB/s sequential at depth, ~1.5-2 GB/s at one request.
    return {"1": "1.8 GB/s", "2": "3.2 GB/s", "4": "5.5 GB/s", "8": "6.8 GB/s", "16": "7.0 GB/s"}

def nvme_gen5():
    return {"1": "2.5 GB/s", "2": "4.5 GB/s", "4": "8 GB/s", "8": "11.5 GB/s", "16": "12.4 GB/s"}

def profile(name, desc, ram, vram, disk, disk_src, h2d, h2d_src, cores, os_reserve, unified=False,
            swap="0 B", latency="80 us", write="3 GB/s", mmap="1.2 GB/s", pageable="6.7 GB/s",
            d2h=None, extra_src=None, reclaims_page_cache=None):
    p = {"name": name, "description": desc, "ram": ram, "swap": swap, "os_reserve": os_reserve,
         "unified": unified}
    if reclaims_page_cache is not None:  # unified only: does a device allocation take page-cache RAM?
        p["device_reclaims_page_cache"] = reclaims_page_cache
    p.update({"cpu_cores": cores, "disk_read": disk, "disk_read_latency": latency,
              "disk_write": write, "mmap_read": mmap, "memcpy_per_thread": "10 GB/s",
              "page_fault": "1 us", "prefault_per_thread": "1 GB/s", "register_per_gib": "170 ms",
              "register_unfaulted_per_gib": "590 ms"})
    if not unified:
        p["vram"] = vram
        p["pcie_h2d_pinned"] = h2d
        p["pcie_h2d_pageable"] = pageable
        p["pcie_d2h"] = d2h or h2d
    src = dict(COMMON_SRC)
    src["disk_read"] = disk_src
    if not unified:
        src["pcie_h2d_pinned"] = h2d_src
    src.update(extra_src or {})
    p["sources"] = src
    return p

PROFILES = [
    profile("rtx5060-16g", "RTX 5060 8 GB, 16 GB RAM, PCIe 4 x4 NVMe: the laptop-class box that gets OOM-killed",
            "16 GiB", "8 GiB", nvme_gen4(),
            "NVMe Gen4 x4 up to ~7.5 GB/s (llama.cpp#7420); QD1 figures are estimates",
            "25 GB/s", "RTX 4090 ~25.5 GB/s pinned (nvbandwidth#15); the 5060's Gen5 x8 link is taken as equal",
            8, "3 GiB"),
    profile("rtx5060-64g", "RTX 5060 8 GB, 64 GB RAM, PCIe 4 x4 NVMe (comfy-aimdo PR #46's Windows box)",
            "64 GiB", "8 GiB", nvme_gen4(),
            "NVMe Gen4 x4 up to ~7.5 GB/s (llama.cpp#7420); comfy-aimdo PR #46 (RTX5060, 64GB, PCIE4x4 NVME)",
            "25 GB/s", "RTX 4090 ~25.5 GB/s pinned (nvbandwidth#15)", 8, "4 GiB"),
    profile("rtx4090-64g", "RTX 4090 24 GB, 64 GB RAM, PCIe 4 x16, Gen4 NVMe (ComfyUI #14396's shape)",
            "64 GiB", "24 GiB", nvme_gen4(),
            "NVMe Gen4 x4 up to ~7.5 GB/s (llama.cpp#7420)",
            "25.5 GB/s", "RTX 4090 ~25.5 GB/s (nvbandwidth#15)", 16, "4 GiB"),
    profile("rtx5090-96g", "RTX 5090 32 GB, 96 GB RAM, PCIe 5 x16, Gen5 NVMe (comfy-aimdo PR #46's Linux box)",
            "96 GiB", "32 GiB", nvme_gen5(),
            "Gen5 x4 up to ~14.5 GB/s (llama.cpp#7420), ~12.4 GB/s real-world (Samsung 9100 PRO)",
            "50 GB/s", "48.5 GB/s end to end from tmpfs on Gen5 (scitix/InstantTensor docs/benchmark.md); Gen5 x16 63 GB/s raw",
            16, "6 GiB"),
    profile("dgx-spark-128g", "DGX Spark: 128 GB unified LPDDR5x shared by CPU and GPU, NVMe",
            "128 GiB", None, nvme_gen4(),
            "Gen4 NVMe figures (llama.cpp#7420); the Spark's drive was not measured",
            None, None, 20, "8 GiB", unified=True, reclaims_page_cache=False,
            extra_src={"unified": "ComfyUI #10896, 128 GB unified; llama.cpp#18012 (DGX Spark)",
                       "memcpy_per_thread": "estimate: LPDDR5x per-core copy, not measured",
                       "device_reclaims_page_cache": "ComfyUI #10896: mmap + copy needs double memory on the Spark, so cudaMalloc does not take the page cache's RAM"}),
    profile("hdd-5060-16g", "RTX 5060 8 GB, 16 GB RAM, a 60 MB/s HDD (ComfyUI PR #14437's box)",
            "16 GiB", "8 GiB", {"1": "60 MB/s", "2": "45 MB/s", "4": "35 MB/s"},
            "ComfyUI PR #14437: RTX 5060, 16 GB RAM, HDD at 60 MB/s; seeks degrade it under concurrency (SimGrid io-degradation: SATA 68.3-1.7n MB/s)",
            "25 GB/s", "RTX 4090 ~25.5 GB/s pinned (nvbandwidth#15); the 5060's link is taken as equal", 8, "3 GiB", latency="8 ms", write="55 MB/s", mmap="40 MB/s"),
    profile("sata-3060-32g", "RTX 3060 12 GB, 32 GB RAM, PCIe 4 x16, SATA SSD",
            "32 GiB", "12 GiB", {"1": "350 MB/s", "2": "480 MB/s", "4": "530 MB/s", "8": "550 MB/s"},
            "SATA III ceiling 600 MB/s; ~550 MB/s sequential is the usual datasheet figure (estimate)",
            "24 GB/s", "A100 Gen4 copy engine ~24.8 GB/s (nvbandwidth#53)", 8, "3 GiB",
            latency="120 us", write="500 MB/s", mmap="300 MB/s"),
    profile("sandbox-2c-24g", "This project's CI machine: 2 vCPU, 24 GiB, no GPU (host-emulated 8 GiB device)",
            "24 GiB", "8 GiB", {"1": "1.05 GB/s", "2": "1.2 GB/s", "4": "1.3 GB/s"},
            "measured here (fio 3.33 on the 2-vCPU sandbox): O_DIRECT 1 job 1M 1.02-1.12 GB/s, 2 jobs 8M 1.07-1.48 GB/s",
            "10 GB/s", "host device backend: a memcpy (measured here: 9.4-12.7 GB/s per thread)", 2, "2 GiB",
            latency="1 ms", write="0.86 GB/s", mmap="0.5 GB/s", pageable="8 GB/s",
            extra_src={"page_fault": "measured here: first touch 5.6-10.9 us/page on this sandbox",
                       "disk_write": "measured here (fio 3.33 on the 2-vCPU sandbox): layout write 0.86 GB/s"}),
    profile("cpu-host", "A CPU-only host (ComfyUI --cpu, no GPU): the device is host RAM, nothing is page-locked; "
            "this sandbox's measured rates", "24 GiB", None, {"1": "1.05 GB/s", "2": "1.2 GB/s", "4": "1.3 GB/s"},
            "measured here (fio 3.33 on the 2-vCPU sandbox): O_DIRECT 1 job 1M 1.02-1.12 GB/s, 2 jobs 8M 1.07-1.48 GB/s",
            None, None, 2, "2 GiB", unified=True, reclaims_page_cache=True,
            latency="1 ms", write="0.86 GB/s", mmap="0.5 GB/s",
            extra_src={"page_fault": "measured here: first touch 5.6-10.9 us/page on this sandbox",
                       "disk_write": "measured here (fio 3.33 on the 2-vCPU sandbox): layout write 0.86 GB/s",
                       "unified": "a CPU device: ComfyUI's model.to('cpu') keeps the weights in host RAM",
                       "device_reclaims_page_cache": "a CPU device's 'device memory' is ordinary RAM: the kernel may take "
                                                     "clean page cache for it",
                       "register_per_gib": "unused: ComfyUI pins nothing on a CPU device (the captured policy's "
                                           "pin_budget is 0); the bundled default is kept"}),
]
# The sandbox's first-touch cost is measured, not the bare-metal default.
for p in PROFILES:
    if p["name"] in ("sandbox-2c-24g", "cpu-host"):
        p["page_fault"] = "8 us"

# ---------------------------------------------------------------- policies
def policy(name, desc, loader, eviction, **kw):
    p = {"name": name, "description": desc, "loader": loader, "eviction": eviction}
    p.update(kw)
    return p

POLICIES = [
    policy("drop", "threaded pinned loader; evicted weights are dropped and re-read from disk",
           "threaded-pinned", "drop"),
    policy("ram-lru", "threaded pinned loader; evicted weights stay in a bounded RAM cache (LRU)",
           "threaded-pinned", "ram-lru"),
    policy("ram-cost-aware", "threaded pinned loader; RAM cache evicts by reload cost (GreedyDual-Size)",
           "threaded-pinned", "ram-cost-aware"),
    policy("spill", "threaded pinned loader; RAM cache, patched weights spill to a scratch file under RAM pressure",
           "threaded-pinned", "spill"),
    policy("mmap-pageable", "classic path: mmap, single-threaded page faults, pageable copies; weights dropped",
           "mmap-pageable", "drop"),
    policy("read-into", "no mmap: sequential read() per tensor into pageable RAM; weights dropped",
           "read-into", "drop"),
    policy("read-into-dontneed", "no mmap, and the page cache of each file dropped after loading (unified memory)",
           "read-into", "drop", drop_page_cache_after_load=True),
    policy("threaded-direct", "threaded pinned loader with O_DIRECT reads (no page cache); weights dropped",
           "threaded-pinned", "drop", direct_io=True),
]
COMMON_POLICY = {"read_threads": 8, "chunk": "2 MiB", "staging_buffers": 3, "staging": "64 MiB",
                 "pin_budget": "auto", "ram_cache": "auto", "host_headroom": "2 GiB",
                 "device_reserve": "1 GiB", "pin_hysteresis": "256 MiB", "cache_hysteresis": "512 MiB",
                 "sources": {"read_threads": "comfy-aimdo src/xfer-file.c: XFER_FILE_THREADS = 8",
                             "chunk": "comfy-aimdo src/xfer-file.c: XFER_FILE_CHUNK_SIZE = 2 MiB",
                             "staging_buffers": "comfy-aimdo src/hostbuf-file-reader.c: HOSTBUF_FILE_READER_SLOTS = 3 x 64 MiB",
                             "pin_hysteresis": "ComfyUI comfy/model_management.py: PIN_PRESSURE_HYSTERESIS = 256 MiB",
                             "pin_budget": "ComfyUI PR #13802 (comfy/model_management.py): MAX_PINNED_MEMORY = max(0.40 ram, min(0.90 ram, ram - 4 GiB))",
                             "ram_cache": "ComfyUI PR #13802: inactive --cache-ram 75% of RAM clamped 12-96 GB",
                             "device_reserve": "ComfyUI comfy/model_management.py: minimum_inference_memory 0.8 GiB + EXTRA_RESERVED 400 MiB, rounded"}}

# ---------------------------------------------------------------- traces
def header(name, desc):
    return {"format": "residency-trace", "version": 1, "name": name, "source": "synthesized",
            "description": desc}

def model(mid, files):
    return {"type": "model", "model": mid, "files": files}

def f(path, size, count, dist="skewed", seed=1):
    return {"path": path, "bytes": size, "tensor_count": count, "tensor_distribution": dist, "tensor_seed": seed}

def prompt(n, body):
    return [{"type": "prompt_begin", "prompt": n}] + body + [{"type": "prompt_end", "prompt": n}]

def use(mid, steps, step, act, mode="full", device=None):
    load = {"type": "load", "model": mid, "mode": mode}
    if device is not None:
        load["device_bytes"] = device
    return [load, {"type": "compute", "models": [mid], "steps": steps, "step_time": step,
                   "activation_bytes": act}, {"type": "release", "model": mid}]

GB = 10**9
TRACES = {}

sdxl = [model("sdxl-base", [f("sd_xl_base_1.0.safetensors", int(6.94 * GB), 2516, seed=11)])]
for n in range(1, 5):
    sdxl += prompt(n, [{"type": "load", "model": "sdxl-base", "mode": "full"},
                       {"type": "compute", "models": ["sdxl-base"], "steps": 1, "step_time": "40 ms", "activation_bytes": "1 GiB"},
                       {"type": "compute", "models": ["sdxl-base"], "steps": 30, "step_time": "110 ms", "activation_bytes": "3 GiB"},
                       {"type": "compute", "models": ["sdxl-base"], "steps": 1, "step_time": "400 ms", "activation_bytes": "3 GiB"},
                       {"type": "release", "model": "sdxl-base"}])
TRACES["sdxl-txt2img"] = (header("sdxl-txt2img", "SDXL base 1.0 txt2img, 4 prompts, one 6.94 GB checkpoint"), sdxl)

wan = [model("umt5-xxl", [f("umt5_xxl_fp16.safetensors", int(11.4 * GB), 242, seed=21)]),
       model("wan-high", [f("wan2.2_t2v_high_noise_14B_fp16.safetensors", int(28.6 * GB), 1095, seed=22)]),
       model("wan-low", [f("wan2.2_t2v_low_noise_14B_fp16.safetensors", int(28.6 * GB), 1095, seed=23)]),
       model("wan-vae", [f("wan_2.1_vae.safetensors", 253815318, 194, seed=24)])]
for n in range(1, 4):
    wan += prompt(n, use("umt5-xxl", 1, "1.5 s", "2 GiB", mode="dynamic")
                  + use("wan-high", 10, "6 s", "6 GiB", mode="dynamic")
                  + use("wan-low", 10, "6 s", "6 GiB", mode="dynamic")
                  + use("wan-vae", 1, "20 s", "8 GiB"))
TRACES["wan22-14b-t2v"] = (header("wan22-14b-t2v", "Wan 2.2 14B fp16 high+low-noise experts, umt5-xxl fp16, VAE; 3 prompts (ComfyUI #14076's workflow shape)"), wan)

flux = [model("mistral-te-fp8", [f("mistral_3_small_flux2_fp8.safetensors", 18 * GB, 363, seed=31)]),
        model("flux2-fp8mixed", [f("flux2_dev_fp8mixed.safetensors", int(35.5 * GB), 1380, seed=32)]),
        model("flux2-bf16", [f("flux2_dev_bf16.safetensors", int(64.4 * GB), 1380, seed=33)]),
        model("flux2-q4", [f("flux2_dev_q4.safetensors", 18 * GB, 1380, seed=34)]),
        model("flux2-vae", [f("flux2-vae.safetensors", 336 * 10**6, 244, seed=35)])]
n = 0
for quant in ["flux2-fp8mixed", "flux2-bf16", "flux2-q4"]:
    for _ in range(2):
        n += 1
        flux += prompt(n, use("mistral-te-fp8", 1, "2 s", "2 GiB", mode="dynamic")
                       + use(quant, 28, "1.2 s", "4 GiB", mode="dynamic")
                       + use("flux2-vae", 1, "1 s", "3 GiB"))
TRACES["flux2-dev-quants"] = (header("flux2-dev-quants", "Flux.2 dev with three transformer quants in turn (fp8mixed 35.5 GB public; bf16 64.4 GB and q4 18 GB are estimates from 32B params), Mistral TE fp8, VAE; 6 prompts"), flux)

ltx = [model("gemma3-12b-fp4", [f("gemma_3_12B_it_fp4_mixed.safetensors", int(9.45 * GB), 626, seed=41)]),
       model("ltx2-19b-fp8", [f("ltx-2-19b-dev-fp8.safetensors", 27127589812, 1540, seed=42)]),
       model("ltx2-vae", [f("ltx-2-video-vae.safetensors", int(1.47 * GB), 310, seed=43)]),
       model("ltx2-lora", [f("ltx-2-style-lora.safetensors", int(1.2 * GB), 960, dist="uniform", seed=44)])]
ltx += [{"type": "patch", "model": "ltx2-19b-fp8", "patch": "ltx2-lora"}]
for n in range(1, 4):
    ltx += prompt(n, use("gemma3-12b-fp4", 1, "2 s", "2 GiB", mode="dynamic")
                  + use("ltx2-19b-fp8", 20, "3 s", "5 GiB", mode="dynamic")
                  + use("ltx2-vae", 1, "8 s", "6 GiB"))
TRACES["ltx2-19b-lora"] = (header("ltx2-19b-lora", "LTX-2 19B fp8 (27.1 GB) + Gemma 3 12B fp4 text encoder + video VAE + one LoRA (LoRA size is an estimate); 3 prompts"), ltx)

chroma = [model("t5xxl-fp16", [f("t5xxl_fp16.safetensors", int(9.79 * GB), 219, seed=51)]),
          model("chroma-bf16", [f("chroma-unlocked-v2.safetensors", 17800038288, 690, seed=52)]),
          model("ae", [f("ae.safetensors", 335 * 10**6, 244, seed=53)])]
for i in range(1, 7):
    chroma.append(model(f"lora{i}", [f(f"chroma_lora_{i}.safetensors", int((0.15 + 0.1 * i) * GB), 380, dist="uniform", seed=60 + i)]))
for i in range(1, 7):
    chroma.append({"type": "patch", "model": "chroma-bf16", "patch": f"lora{i}"})
for n in range(1, 4):
    chroma += prompt(n, use("t5xxl-fp16", 1, "600 ms", "1 GiB", mode="dynamic")
                     + use("chroma-bf16", 26, "900 ms", "4 GiB", mode="dynamic")
                     + use("ae", 1, "700 ms", "3 GiB"))
TRACES["chroma-6lora"] = (header("chroma-6lora", "Chroma bf16 (17.8 GB) + 6 LoRAs (sizes are estimates) + T5xxl fp16 + ae (ComfyUI PR #13609's GB10 workflow); 3 prompts"), chroma)

def main():
    for p in PROFILES:
        write_json(os.path.join(ROOT, "profiles", p["name"] + ".json"), p)
    for p in POLICIES:
        q = dict(p)
        for k, v in COMMON_POLICY.items():
            q.setdefault(k, v)
        write_json(os.path.join(ROOT, "policies", p["name"] + ".json"), q)
    for name, (h, events) in TRACES.items():
        with open(os.path.join(ROOT, "examples", name + ".jsonl"), "w") as out:
            out.write(json.dumps(h) + "\n")
            for e in events:
                out.write(json.dumps(e) + "\n")
    print(f"wrote {len(PROFILES)} profiles, {len(POLICIES)} policies, {len(TRACES)} traces")

if __name__ == "__main__":
    main()
