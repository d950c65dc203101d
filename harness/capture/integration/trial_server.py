#!/usr/bin/python3
"""One run of the real ComfyUI (COMFYUI_DIR, CPU, Debian's torch 1.13) with
the capture package, for trial_test.py: ComfyUI's own modules and executor,
our test nodes, prompts run the way its prompt worker runs them. Each run is
a separate process (as a server start is), so a test can kill it and start
it again, also as PID 1 in a PID namespace.

Usage: trial_server.py MODE CAPTURE_DIR MODELS_DIR
  normal        four prompts: ok, a node error (execution_error), an
                interrupt (execution_interrupted), ok again; then exit
  die-after-one one prompt, then wait inside the second to be SIGKILLed
  die-in-first  wait inside the first prompt to be SIGKILLed
  restart       start (capture recovers what a dead run left), one prompt, exit
  build         write the model files into MODELS_DIR (no capture)
Prints "pid N" first, and ComfyUI's and capture's log lines as they come.
"""
import asyncio
import logging
import os
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import comfyui_capture_test as it  # noqa: E402  (its helpers: shims, models, nodes, graph)
import shims  # noqa: E402

MB = 1024 * 1024


def trial_nodes(torch, comfy):
    mm = comfy.model_management

    class ResidencyTrialTorchFile:
        """A custom node's own loader: comfy.utils.load_torch_file on a .pt
        file, and a ModelPatcher built from its tensors."""
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"model": ("MODEL",)}}
        RETURN_TYPES = ("MODEL",)
        FUNCTION = "run"
        CATEGORY = "residency/test"

        def run(self, model):
            import comfy.utils
            sd = comfy.utils.load_torch_file(os.path.join(os.environ["RESIDENCY_TRIAL_MODELS"], "upscaler.pt"))
            net = torch.nn.Sequential(*[torch.nn.Linear(256, 256) for _ in range(4)])
            net.load_state_dict(sd)
            Upscaler = type("Upscaler", (torch.nn.Sequential,), {})
            net.__class__ = Upscaler
            dev = mm.get_torch_device()
            p = comfy.model_patcher.ModelPatcher(net, load_device=dev, offload_device=dev)
            mm.load_models_gpu([p])
            return (model,)

    class ResidencyTrialFail:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"model": ("MODEL",), "how": ("STRING", {"default": "error"})}}
        RETURN_TYPES = ("MODEL",)
        FUNCTION = "run"
        CATEGORY = "residency/test"

        def run(self, model, how):
            if how == "error":
                raise RuntimeError("a node failed on purpose")
            if how == "interrupt":
                mm.interrupt_current_processing(True)
                mm.throw_exception_if_processing_interrupted()
            if how == "kill":
                # The test kills this process from outside (a PID 1 cannot
                # SIGKILL itself from inside its namespace).
                print("residency-trial: waiting to be killed", flush=True)
                time.sleep(120)
            return (model,)

    return {c.__name__: c for c in (ResidencyTrialTorchFile, ResidencyTrialFail)}


def graph(strength, seed, fail=None):
    g = it.prompt_graph(strength, seed)
    g["7"] = {"class_type": "ResidencyTrialTorchFile", "inputs": {"model": ["4", 0]}}
    g["6"]["inputs"]["model"] = ["7", 0]
    if fail:
        g["8"] = {"class_type": "ResidencyTrialFail", "inputs": {"model": ["7", 0], "how": fail}}
        g["6"]["inputs"]["model"] = ["8", 0]
    return g


def main():
    mode, capture_dir, models_dir = sys.argv[1:4]
    print("pid %d" % os.getpid(), flush=True)
    comfy_dir, einops_dir = os.environ["COMFYUI_DIR"], os.environ.get("EINOPS_DIR")
    import torch
    if einops_dir:
        sys.path.insert(0, einops_dir)
    shims.install(comfy_dir, einops_dir)
    for k in list(os.environ):
        if k.startswith("RESIDENCY_CAPTURE") or k.startswith("RESIDENCY_AGENT"):
            del os.environ[k]
    os.environ["RESIDENCY_CAPTURE_DIR"] = capture_dir
    os.environ["RESIDENCY_TRIAL_MODELS"] = models_dir
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    import comfy.options
    comfy.options.enable_args_parsing()
    sys.argv = [sys.argv[0], "--cpu"]
    os.makedirs(os.path.dirname(capture_dir), exist_ok=True)
    os.chdir(os.path.dirname(capture_dir))
    import comfy.model_management
    import comfy.model_patcher
    import comfy.ops
    import comfy.sd
    import comfy.utils
    shims.after_import()
    if mode == "build":
        it.build_models(torch, comfy, models_dir)
        torch.manual_seed(1)
        net = torch.nn.Sequential(*[torch.nn.Linear(256, 256) for _ in range(4)])
        torch.save(net.state_dict(), os.path.join(models_dir, "upscaler.pt"))
        return 0
    import folder_paths
    folder_paths.add_model_folder_path("diffusion_models", os.path.join(models_dir, "diffusion_models"), is_default=True)
    folder_paths.add_model_folder_path("loras", os.path.join(models_dir, "loras"), is_default=True)
    import execution
    import nodes
    nodes.NODE_CLASS_MAPPINGS.update(it.make_test_nodes(torch, comfy))
    nodes.NODE_CLASS_MAPPINGS.update(trial_nodes(torch, comfy))
    pkg_link = os.path.join(os.path.dirname(capture_dir), "custom_nodes", "residency-capture")
    os.makedirs(os.path.dirname(pkg_link), exist_ok=True)
    if not os.path.islink(pkg_link):
        os.symlink(it.PACKAGE, pkg_link)
    if not asyncio.run(nodes.load_custom_node(pkg_link)):
        print("FAIL: the capture package did not load")
        return 1
    executor = execution.PromptExecutor(it.FakeServer(), cache_type=execution.CacheType.CLASSIC,
                                        cache_args={"lru": 0, "ram": 0})

    def run(g, n):
        executor.execute(g, "prompt-%d" % n, {}, ["6"])
        comfy.model_management.unload_all_models()
        print("prompt %d done: success=%s" % (n, executor.success), flush=True)

    if mode == "normal":
        run(graph(0.5, 1), 1)
        run(graph(0.6, 2, fail="error"), 2)
        run(graph(0.7, 3, fail="interrupt"), 3)
        comfy.model_management.interrupt_current_processing(False)
        run(graph(0.8, 4), 4)
    elif mode == "die-after-one":
        run(graph(0.5, 1), 1)
        run(graph(0.6, 2, fail="kill"), 2)
    elif mode == "die-in-first":
        run(graph(0.5, 1, fail="kill"), 1)
    elif mode == "restart":
        run(graph(0.5, 1), 1)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # atexit: the capture finishes its trace (as at a server's exit)
    sys.exit(code)
