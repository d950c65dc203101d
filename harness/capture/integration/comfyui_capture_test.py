#!/usr/bin/python3
"""Capture against the real ComfyUI (a checkout found through COMFYUI_DIR).

Runs on CPU with Debian's torch 1.13 and the shims in shims.py. The capture
package is loaded the way ComfyUI loads a custom node (nodes.load_custom_node),
then two prompts run through execution.PromptExecutor on a small graph:

  UNETLoader (a tiny Wan 2.1 model saved as .safetensors, loaded through
  comfy.sd.load_diffusion_model -> comfy.utils.load_torch_file)
  -> LoraLoaderModelOnly (a LoRA .safetensors: clone().add_patches)
  -> ResidencyTestSample (load_models_gpu: a full load, then compute)
  -> ResidencyTestOffload (free_memory: "Unloaded partially")
  -> ResidencyTestPartialLoad (LoadedModel.model_load(lowvram_model_memory=...)
     of a second, in-memory model: "loaded partially")
  -> ResidencyTestOutput
  unload_all_models() between the prompts; the second prompt changes the
  LoRA strength (UNETLoader is served from the cache). Then the executor's
  caches are dropped, so the models are garbage-collected (delete events).

Checks: every trace line is well-formed; every "Requested to load" / "loaded
completely" / "loaded partially" / "Unloaded partially" line ComfyUI logged
has its event in the trace, same bytes (+-1 MB), same order; then, when the
binary is built, `residency replay TRACE --profile sandbox-2c-24g`.

Exit 0 on success, 1 on failure; without COMFYUI_DIR or torch it prints
"SKIPPED: <reason>" and exits 0, or the code given by --skip-code (ctest: 77).
"""
import argparse
import asyncio
import gc
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
CAPTURE_ROOT = os.path.dirname(HERE)                   # harness/capture
REPO = os.path.dirname(os.path.dirname(CAPTURE_ROOT))  # the repository
PACKAGE = os.path.join(CAPTURE_ROOT, "comfyui")
MB = 1024 * 1024


def skip(reason, code):
    print("SKIPPED: " + reason)
    sys.exit(code)


class LogLines(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        try:
            self.lines.append(record.getMessage())
        except Exception:
            pass


class FakeServer:
    """What PromptExecutor needs of ComfyUI's PromptServer."""
    def __init__(self):
        self.client_id = None
        self.last_node_id = None
        self.sockets_metadata = {}
        self.messages = []

    def send_sync(self, event, data, sid=None):
        self.messages.append(event)


def make_test_nodes(torch, comfy):
    mm = comfy.model_management

    class ResidencyTestSample:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"model": ("MODEL",), "seed": ("INT", {"default": 0})}}
        RETURN_TYPES = ("MODEL",)
        FUNCTION = "run"
        CATEGORY = "residency/test"

        def run(self, model, seed):
            mm.load_models_gpu([model])
            g = torch.Generator().manual_seed(seed)
            x = torch.randn(256, 256, generator=g)
            for _ in range(20):   # some compute, ~ms
                x = torch.tanh(x @ x.T / 256)
            return (model,)

    class ResidencyTestOffload:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"model": ("MODEL",)}}
        RETURN_TYPES = ("MODEL",)
        FUNCTION = "run"
        CATEGORY = "residency/test"

        def run(self, model):
            # free_memory asks for 2 MiB more than is free. On a machine shared
            # with a compiler the free-RAM reading moves by more than that
            # between two calls, so it is pinned for this call only (test
            # scaffolding; free_memory itself runs unchanged).
            real = mm.get_free_memory
            free = 10 * 1024 ** 3
            mm.get_free_memory = lambda dev=None, torch_free_too=False: (free, free) if torch_free_too else free
            try:
                mm.free_memory(free + 2 * MB, mm.get_torch_device())
            finally:
                mm.get_free_memory = real
            return (model,)

    class ResidencyTestPartialLoad:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"model": ("MODEL",)}}
        RETURN_TYPES = ("TINYNET",)
        FUNCTION = "run"
        CATEGORY = "residency/test"

        def run(self, model):
            ops = comfy.ops.disable_weight_init
            net = torch.nn.Sequential(*[ops.Linear(512, 512) for _ in range(8)])
            for m in net:
                m.weight = torch.nn.Parameter(torch.zeros(512, 512), requires_grad=False)
                m.bias = torch.nn.Parameter(torch.zeros(512), requires_grad=False)
            TinyNet = type("TinyNet", (torch.nn.Sequential,), {})
            net.__class__ = TinyNet
            dev = mm.get_torch_device()
            p = comfy.model_patcher.ModelPatcher(net, load_device=dev, offload_device=dev)
            mm.LoadedModel(p).model_load(lowvram_model_memory=5 * MB)
            return (p,)

    class ResidencyTestOutput:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"model": ("MODEL",), "tiny": ("TINYNET",)}}
        RETURN_TYPES = ()
        OUTPUT_NODE = True
        FUNCTION = "run"
        CATEGORY = "residency/test"

        def run(self, model, tiny):
            return {"ui": {"text": ["ok"]}}

    return {c.__name__: c for c in (ResidencyTestSample, ResidencyTestOffload,
                                    ResidencyTestPartialLoad, ResidencyTestOutput)}


def build_models(torch, comfy, models_dir):
    """A tiny Wan 2.1 transformer (detected by ComfyUI as WAN21) and a LoRA for it."""
    import safetensors.torch
    from comfy.ldm.wan.model import WanModel
    torch.manual_seed(0)
    net = WanModel(model_type="t2v", patch_size=(1, 2, 2), text_len=16, in_dim=4, dim=128, ffn_dim=512,
                   freq_dim=256, text_dim=4096, out_dim=4, num_heads=1, num_layers=3,
                   operations=comfy.ops.manual_cast)
    sd = {k: (v.float() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    for v in sd.values():
        if v.is_floating_point():
            v.normal_(0, 0.02)
    os.makedirs(os.path.join(models_dir, "diffusion_models"), exist_ok=True)
    os.makedirs(os.path.join(models_dir, "loras"), exist_ok=True)
    unet = os.path.join(models_dir, "diffusion_models", "tinywan.safetensors")
    safetensors.torch.save_file(sd, unet)
    lora = {}
    for i in range(3):
        for w in ("q", "k", "v", "o"):
            base = "lora_unet_blocks_%d_self_attn_%s" % (i, w)
            lora[base + ".lora_up.weight"] = torch.randn(128, 8) * 0.01
            lora[base + ".lora_down.weight"] = torch.randn(8, 128) * 0.01
            lora[base + ".alpha"] = torch.tensor(8.0)
    lora_path = os.path.join(models_dir, "loras", "tinywan_lora.safetensors")
    safetensors.torch.save_file(lora, lora_path)
    return unet, lora_path


def prompt_graph(strength, seed):
    return {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "tinywan.safetensors", "weight_dtype": "default"}},
        "2": {"class_type": "LoraLoaderModelOnly",
              "inputs": {"model": ["1", 0], "lora_name": "tinywan_lora.safetensors", "strength_model": strength}},
        "3": {"class_type": "ResidencyTestSample", "inputs": {"model": ["2", 0], "seed": seed}},
        "4": {"class_type": "ResidencyTestOffload", "inputs": {"model": ["3", 0]}},
        "5": {"class_type": "ResidencyTestPartialLoad", "inputs": {"model": ["4", 0]}},
        "6": {"class_type": "ResidencyTestOutput", "inputs": {"model": ["4", 0], "tiny": ["5", 0]}},
    }


# ---- checking ---------------------------------------------------------------

RE_REQUESTED = re.compile(r"^Requested to load (\S+)")
RE_COMPLETE = re.compile(r"^loaded completely; ([0-9.e+]+) MB usable, ([0-9.]+) MB loaded, full load: (\w+)")
RE_PARTIAL = re.compile(r"^loaded partially; ([0-9.e+]+) MB usable, ([0-9.]+) MB loaded, ([0-9.]+) MB offloaded")
RE_UNLOADED = re.compile(r"^Unloaded partially: ([0-9.]+) MB freed, ([0-9.]+) MB remains loaded")


def memory_lines(lines):
    out = []
    for line in lines:
        for kind, rx in (("requested", RE_REQUESTED), ("loaded completely", RE_COMPLETE),
                         ("loaded partially", RE_PARTIAL), ("unloaded partially", RE_UNLOADED)):
            m = rx.match(line)
            if m:
                out.append((kind, m, line))
    return out


def check_trace_lines(text, problems):
    lines = [l for l in text.split("\n") if l.strip()]
    objs = []
    for i, l in enumerate(lines, 1):
        try:
            o = json.loads(l)
        except ValueError:
            problems.append("line %d: not JSON" % i)
            continue
        if not isinstance(o, dict):
            problems.append("line %d: not an object" % i)
        objs.append(o)
    header, events = objs[0], objs[1:]
    if header.get("format") != "residency-trace" or header.get("version") != 1:
        problems.append("header: not a residency trace")
    if header.get("source") != "captured:comfyui":
        problems.append("header: source is %r" % header.get("source"))
    m = header.get("machine") or {}
    for k in ("device", "ram", "unified", "cpu_cores", "torch", "server", "flags", "host"):
        if k not in m:
            problems.append("header: machine lacks %r" % k)
    if "--cpu" not in m.get("flags", []):
        problems.append("header: machine.flags lacks --cpu")
    allowed = {
        "model": {"model", "files"}, "load": {"model", "mode", "device_bytes"},
        "compute": {"models", "steps", "step_ns", "activation_bytes", "step_includes_streaming"},
        "release": {"model"}, "delete": {"model"}, "patch": {"model", "patch", "patched_bytes"},
        "prompt_begin": {"prompt"}, "prompt_end": {"prompt", "measured_wall_ns", "status"},
        "unload": {"model", "freed_bytes", "remaining_bytes", "reason"},
        "node": {"prompt", "node", "class", "duration_ns", "cached"},
    }
    defined, handles, last_at = set(), {}, -1
    for i, e in enumerate(events, 2):
        t = e.get("type")
        if t not in allowed:
            problems.append("line %d: unknown type %r" % (i, t))
            continue
        extra = set(e) - allowed[t] - {"type", "at_ns"}
        if extra:
            problems.append("line %d: unexpected fields %s" % (i, sorted(extra)))
        at = e.get("at_ns")
        if not isinstance(at, int) or at < last_at:
            problems.append("line %d: at_ns %r not monotonic" % (i, at))
        last_at = at if isinstance(at, int) else last_at
        refs = [e["model"]] if "model" in e else []
        refs += e.get("models", []) + ([e["patch"]] if "patch" in e else [])
        if t == "model":
            if e["model"] in defined:
                problems.append("line %d: %s defined twice" % (i, e["model"]))
            defined.add(e["model"])
            for f in e["files"]:
                if f["bytes"] != sum(f["tensors"]) or f["bytes"] <= 0:
                    problems.append("line %d: file bytes != sum(tensors)" % i)
            continue
        for r in refs:
            if r not in defined:
                problems.append("line %d: %s used before its model line" % (i, r))
        if t == "load":
            handles[e["model"]] = handles.get(e["model"], 0) + 1
        if t == "release":
            handles[e["model"]] = handles.get(e["model"], 0) - 1
            if handles[e["model"]] < 0:
                problems.append("line %d: release without a handle" % i)
        if t == "unload" and e["reason"] not in ("free_memory", "unload_all_models", "cleanup_models",
                                                  "model_unload", "partially_unload", "finalizer", "on_demand",
                                                  "other"):
            problems.append("line %d: bad reason" % i)
    for m_id, n in handles.items():
        if n != 0:
            problems.append("%s: %d handles never released" % (m_id, n))
    return header, events


def match_log_to_trace(mem_lines, events, problems):
    """Each memory log line -> its event, in order. 'Requested to load C' lines
    walk the load events; 'loaded ...' and 'Unloaded partially' lines walk the
    load and unload events together."""
    model_bytes = {e["model"]: sum(f["bytes"] for f in e["files"]) for e in events if e["type"] == "model"}
    idx_req, idx = 0, 0
    rows = []
    close = lambda a, b: abs(a - b) <= MB  # noqa: E731
    for kind, m, line in mem_lines:
        found = None
        if kind == "requested":
            for j in range(idx_req, len(events)):
                e = events[j]
                if e["type"] == "load" and e["model"].split("#")[0] == m.group(1):
                    found = j
                    break
            if found is not None:
                idx_req = found + 1
        else:
            for j in range(idx, len(events)):
                e = events[j]
                if kind == "loaded completely" and e["type"] == "load" and e.get("mode") == "full" \
                        and close(model_bytes.get(e["model"], -1e18), float(m.group(2)) * MB):
                    found = j
                elif kind == "loaded partially" and e["type"] == "load" and e.get("mode") == "partial" \
                        and close(e["device_bytes"], float(m.group(2)) * MB):
                    found = j
                elif kind == "unloaded partially" and e["type"] == "unload" \
                        and close(e["freed_bytes"], float(m.group(1)) * MB) \
                        and close(e.get("remaining_bytes", -1e18), float(m.group(2)) * MB):
                    found = j
                if found is not None:
                    break
            if found is not None:
                idx = found + 1
        if found is None:
            problems.append("no event (in order, +-1 MB) for log line: %s" % line)
        rows.append((line, found, events[found] if found is not None else None))
    return rows


def run_replay(trace, problems, notes):
    binary = os.environ.get("RESIDENCY_BIN") or os.path.join(REPO, "build", "release", "residency")
    env = dict(os.environ, RESIDENCY_DATA_DIR=os.path.join(REPO, "traces"))
    r = None
    for _ in range(12):   # it may be being rebuilt: absent or not yet executable for a moment
        if os.access(binary, os.X_OK):
            try:
                r = subprocess.run([binary, "replay", trace, "--profile", "sandbox-2c-24g"], capture_output=True,
                                   text=True, env=env, timeout=300)
                break
            except OSError:
                pass
        time.sleep(5)
    if r is None:
        notes.append("replay: not run, %s is not built" % binary)
        return
    out = (r.stdout + r.stderr).strip()
    print("$ residency replay %s --profile sandbox-2c-24g   (exit %d)" % (os.path.basename(trace), r.returncode))
    print("\n".join("    " + l for l in out.split("\n")[:40]))
    if r.returncode != 0:
        problems.append("replay exited %d" % r.returncode)
    # On its own machine record, and against its own prompt times.
    for args in (["replay", trace, "--profile", "captured"], ["fidelity", "--captured", trace]):
        r = subprocess.run([binary] + args, capture_output=True, text=True, env=env, timeout=300)
        out = (r.stdout + r.stderr).strip()
        print("$ residency %s   (exit %d)" % (" ".join(a if a != trace else os.path.basename(trace) for a in args),
                                              r.returncode))
        print("\n".join("    " + l for l in out.split("\n")[:12]))
        if r.returncode != 0:
            problems.append("residency %s exited %d" % (args[0], r.returncode))
        elif args[0] == "fidelity" and "prompts compared: median |error|" not in out:
            problems.append("fidelity --captured printed no comparison")


def failing_hook_phase(cap, executor, comfy, logs, problems):
    """A third prompt, the same as the second, with capture made to fail in its
    first load: ComfyUI's results and memory log lines are the second prompt's,
    capture logs one warning and is off."""
    def lines_of(run):
        start = len(logs.lines)
        comfy.model_management.unload_all_models()
        ok = run()
        return ok, [l for l in logs.lines[start:] if any(r.match(l) for r in (RE_REQUESTED, RE_COMPLETE, RE_PARTIAL, RE_UNLOADED))], \
            [l for l in logs.lines[start:] if l.startswith("residency capture: disabled")]

    def run(strength):
        def go():
            executor.execute(prompt_graph(strength, 2), "prompt-%s" % strength, {}, ["6"])
            return executor.success
        return go

    ok_before, before, _ = lines_of(run(0.6))          # capture working (its trace is not kept)

    def broken(*a, **k):
        raise RuntimeError("injected capture failure")

    cap.recorder.loaded = broken
    ok_after, after, warnings = lines_of(run(0.65))
    print("failing hook: prompt ok %s -> %s; ComfyUI memory lines %d -> %d, identical: %s; capture warnings: %s"
          % (ok_before, ok_after, len(before), len(after), before == after, warnings))
    if not (ok_before and ok_after) or before != after or len(before) == 0:
        problems.append("a failing capture hook changed ComfyUI's results or log lines")
    if cap.guard.enabled or len(warnings) != 1 or "injected capture failure" not in warnings[0]:
        problems.append("a failing capture hook did not disable capture with one warning")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-code", type=int, default=0)
    ap.add_argument("--keep", help="copy the captured trace here")
    opts = ap.parse_args()
    comfy_dir = os.environ.get("COMFYUI_DIR")
    if not comfy_dir:
        skip("COMFYUI_DIR is not set (a checkout of ComfyUI 3cd7b32, e.g. the pollockjj/ComfyUI mirror)", opts.skip_code)
    if not os.path.isfile(os.path.join(comfy_dir, "comfy", "model_management.py")):
        skip("COMFYUI_DIR=%s holds no comfy/model_management.py" % comfy_dir, opts.skip_code)
    try:
        import torch
    except ImportError as e:
        skip("no torch (%s); apt-get install python3-torch" % e, opts.skip_code)
    einops_dir = os.environ.get("EINOPS_DIR")
    try:
        if einops_dir:
            sys.path.insert(0, einops_dir)
        import einops  # noqa: F401
    except ImportError:
        skip("no einops (set EINOPS_DIR to a checkout of arogozhnikov/einops v0.8.1)", opts.skip_code)

    sys.path.insert(0, HERE)
    import shims
    shims.install(comfy_dir, einops_dir)

    tmp = tempfile.mkdtemp(prefix="residency-capture-it-")
    capture_dir = os.path.join(tmp, "capture")
    for k in list(os.environ):
        if k.startswith("RESIDENCY_CAPTURE") or k.startswith("RESIDENCY_AGENT"):
            del os.environ[k]
    os.environ["RESIDENCY_CAPTURE_DIR"] = capture_dir

    logs = LogLines()
    root = logging.getLogger()
    root.addHandler(logs)
    root.setLevel(logging.INFO)
    quiet = logging.StreamHandler(open(os.path.join(tmp, "comfyui.log"), "w"))
    root.addHandler(quiet)

    import comfy.options
    comfy.options.enable_args_parsing()
    sys.argv = [sys.argv[0], "--cpu"]
    os.chdir(tmp)
    import comfy.model_management
    import comfy.model_patcher
    import comfy.ops
    import comfy.sd
    import comfy.utils
    shims.after_import()
    import folder_paths
    models_dir = os.path.join(tmp, "models")
    unet_path, lora_path = build_models(torch, comfy, models_dir)
    folder_paths.add_model_folder_path("diffusion_models", os.path.join(models_dir, "diffusion_models"), is_default=True)
    folder_paths.add_model_folder_path("loras", os.path.join(models_dir, "loras"), is_default=True)
    import execution
    import nodes
    nodes.NODE_CLASS_MAPPINGS.update(make_test_nodes(torch, comfy))

    # Load the capture package as ComfyUI loads a custom node.
    pkg_link = os.path.join(tmp, "custom_nodes", "residency-capture")
    os.makedirs(os.path.dirname(pkg_link))
    os.symlink(PACKAGE, pkg_link)
    ok = asyncio.run(nodes.load_custom_node(pkg_link))
    module = sys.modules.get(pkg_link.replace(".", "_x_"))
    cap = getattr(module, "CAPTURE", None)
    if not ok or cap is None:
        print("FAIL: the capture package did not install (load_custom_node -> %r)" % ok)
        return 1
    print("capture hooks installed: %d (%s)" % (len(cap.patches.installed), ", ".join(cap.patches.installed)))
    if cap.patches.missing:
        print("capture hooks missing: " + ", ".join(cap.patches.missing))

    mem_from = len(logs.lines)
    server = FakeServer()
    executor = execution.PromptExecutor(server, cache_type=execution.CacheType.CLASSIC,
                                        cache_args={"lru": 0, "ram": 0})
    t = time.time()
    executor.execute(prompt_graph(0.5, 1), "prompt-1", {}, ["6"])
    ok1 = executor.success
    comfy.model_management.unload_all_models()
    executor.execute(prompt_graph(0.75, 2), "prompt-2", {}, ["6"])
    ok2 = executor.success
    executor.reset()            # drop the output caches: the models are garbage now
    gc.collect()
    comfy.model_management.cleanup_models()
    cap.recorder.collect()
    trace = cap.recorder.finish()
    run_s = time.time() - t
    mem = memory_lines(logs.lines[mem_from:])

    problems, notes = [], []
    if not (ok1 and ok2):
        problems.append("a prompt failed: %s" % [m for m in server.messages if "error" in m])
    if cap.guard.failure:
        problems.append("capture disabled itself: " + cap.guard.failure)
    if not trace:
        print("FAIL: no trace written")
        return 1
    text = open(trace).read()
    header, events = check_trace_lines(text, problems)
    rows = match_log_to_trace(mem, events, problems)

    print("ComfyUI %s, torch %s, two prompts in %.2f s; trace %s: %d events, %d bytes"
          % (header.get("machine", {}).get("server"), torch.__version__, run_s, os.path.basename(trace),
             len(events), len(text)))
    print("header machine: " + json.dumps(header.get("machine")))
    print("\nComfyUI's memory log lines -> trace events:")
    for line, j, e in rows:
        ev = json.dumps({k: v for k, v in e.items() if k != "at_ns"}) if e else "MISSING"
        print("  %-78.78s -> %s" % (line, "line %d %s" % (j + 2, ev) if e else ev))
    print("\ntrace events (at_ns dropped; model tensors elided):")
    for e in events:
        e = {k: v for k, v in e.items() if k != "at_ns"}
        if e["type"] == "model":
            e["files"] = [{"path": os.path.relpath(f["path"], tmp) if f["path"].startswith(tmp) else f["path"],
                           "bytes": f["bytes"], "tensors": "[%d sizes]" % len(f["tensors"])} for f in e["files"]]
        print("  " + json.dumps(e))
    kinds = {}
    for e in events:
        kinds[e["type"]] = kinds.get(e["type"], 0) + 1
    print("\nevent counts: " + ", ".join("%s %d" % kv for kv in sorted(kinds.items())))
    for need in ("model", "load", "compute", "release", "delete", "patch", "prompt_begin", "prompt_end",
                 "unload", "node"):
        if need not in kinds:
            problems.append("no %s event in the trace" % need)
    if not any(e["type"] == "load" and e.get("mode") == "partial" for e in events):
        problems.append("no partial load")
    if not any(e["type"] == "unload" and e["reason"] == "unload_all_models" for e in events):
        problems.append("no unload_all_models unload")
    if not any(e["type"] == "node" and e["cached"] for e in events):
        problems.append("no cached node in the second prompt")
    wan_files = [f for e in events if e["type"] == "model" for f in e["files"] if f["path"].endswith("tinywan.safetensors")]
    if not wan_files:
        problems.append("the WAN21 model does not name tinywan.safetensors")
    lora_files = [f for e in events if e["type"] == "model" for f in e["files"] if f["path"].endswith("tinywan_lora.safetensors")]
    if not lora_files:
        problems.append("the LoRA patch does not name tinywan_lora.safetensors")
    print()
    run_replay(trace, problems, notes)
    print()
    failing_hook_phase(cap, executor, comfy, logs, problems)
    if opts.keep:
        shutil.copyfile(trace, opts.keep)
        print("trace copied to " + opts.keep)
    for n in notes:
        print("NOTE: " + n)
    if problems:
        for p in problems:
            print("FAIL: " + p)
        return 1
    print("PASS: %d memory log lines matched their trace events in order; trace well-formed" % len(rows))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)   # skip interpreter teardown (ComfyUI's __del__ noise at exit)
