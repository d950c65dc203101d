"""The trace header's "machine" record: device, memory, versions, and the
memory-related flags ComfyUI was started with."""
import os
import socket
import sys

# ComfyUI's memory-related command-line flags (comfy/cli_args.py at 3cd7b32,
# plus those of later versions up to 0.38: dynamic VRAM, fast disk, NVML
# pressure), by how many values they take.
FLAGS_NO_VALUE = {
    "--lowvram", "--novram", "--highvram", "--normalvram", "--gpu-only", "--cpu",
    "--disable-mmap", "--mmap-torch-files", "--cache-classic", "--cache-none",
    "--disable-smart-memory", "--disable-async-offload", "--disable-pinned-memory",
    "--cpu-vae", "--high-ram", "--fast-disk", "--disable-dynamic-vram", "--enable-dynamic-vram",
    "--disable-fast-disk", "--disable-nvml-pressure", "--cuda-malloc", "--disable-cuda-malloc",
}
FLAGS_ONE_VALUE = {"--cache-lru", "--reserve-vram", "--vram-headroom", "--cuda-device", "--default-device"}
FLAGS_OPTIONAL_VALUES = {"--cache-ram": 2, "--async-offload": 1}


def _is_number(s):
    try:
        float(s)
        return True
    except (TypeError, ValueError):
        return False


def memory_flags(argv):
    """["--lowvram", "--reserve-vram", "2", "--cache-ram", "8", ...] in argv order."""
    out = []
    i = 1
    while i < len(argv):
        a = str(argv[i])
        name, eq, val = a.partition("=")
        if name in FLAGS_NO_VALUE:
            out.append(name)
        elif name in FLAGS_ONE_VALUE:
            out.append(name)
            if eq:
                out.append(val)
            elif i + 1 < len(argv):
                out.append(str(argv[i + 1]))
                i += 1
        elif name in FLAGS_OPTIONAL_VALUES:
            out.append(name)
            if eq:
                out.append(val)
            else:
                n = FLAGS_OPTIONAL_VALUES[name]
                while n > 0 and i + 1 < len(argv) and _is_number(argv[i + 1]):
                    out.append(str(argv[i + 1]))
                    i += 1
                    n -= 1
        i += 1
    return out


def total_ram():
    try:
        import psutil
        return int(psutil.virtual_memory().total)
    except Exception:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def comfyui_version():
    mod = sys.modules.get("comfyui_version")
    if mod is None:
        try:
            import comfyui_version as mod  # noqa: F811 (ComfyUI's root is on sys.path)
        except Exception:
            return "ComfyUI"
    return "ComfyUI " + str(getattr(mod, "__version__", "?"))


def collect(mm, torch, namer, argv=None):
    """mm: comfy.model_management; namer: redact.PathNamer (hashes the host)."""
    argv = sys.argv if argv is None else argv
    dev = mm.get_torch_device()
    dev_type = getattr(dev, "type", str(dev))
    try:
        name = str(mm.get_torch_device_name(dev))
    except Exception:
        name = str(dev)
    unified = dev_type in ("cpu", "mps")
    if dev_type == "cuda":
        try:
            unified = bool(getattr(torch.cuda.get_device_properties(dev), "is_integrated", False))
        except Exception:
            pass
    m = {"device": name}
    if not unified:
        m["vram"] = int(mm.get_total_memory(dev))
    m["ram"] = total_ram()
    m["unified"] = unified
    m["cpu_cores"] = int(os.cpu_count() or 1)
    m["torch"] = str(getattr(torch, "__version__", "?"))
    m["server"] = comfyui_version()
    m["flags"] = memory_flags(argv)
    m["host"] = namer.host(socket.gethostname())
    return m
