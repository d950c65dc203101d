"""Residency capture: a ComfyUI custom node package with no nodes.

Link or copy this folder into ComfyUI/custom_nodes/. At import it hooks
ComfyUI's model loading, memory management and prompt execution and writes
what happened as Residency traces (docs/CAPTURE.md). Outside ComfyUI (no
comfy.model_management imported yet) importing it does nothing.
"""
import logging
import sys

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}

LOG = logging.getLogger("residency.capture")
CAPTURE = None   # the running Capture, for tests and the curious


def _default_dir():
    import os
    try:
        import folder_paths
        return os.path.join(folder_paths.get_user_directory(), "residency-capture")
    except Exception:
        return None


def dynamic_vram_line(mp, hooks):
    """Which loading paths this ComfyUI has and which of them are hooked."""
    dynamic = getattr(hooks, "dynamic_class", None)
    if dynamic is None:
        return "no dynamic VRAM in this ComfyUI (ModelPatcher hooked)"
    core = getattr(mp, "CoreModelPatcher", None)
    state = "on (CoreModelPatcher is ModelPatcherDynamic)" if core is dynamic else "available, off"
    hooked = [w for w in hooks.installed if w.startswith("ModelPatcherDynamic.")]
    return "dynamic VRAM %s; hooked: %s" % (state, ", ".join(hooked) or "nothing of ModelPatcherDynamic")


def install_into_comfyui(env=None, argv=None):
    """Hook the ComfyUI modules already imported; returns the Capture or None."""
    import importlib

    from . import machine, settings
    from .capture import Capture
    from .hooks import Hooks

    conf = settings.from_env(env, default_dir=_default_dir())
    if not conf.enabled:
        LOG.info("residency capture: off (RESIDENCY_CAPTURE=0)")
        return None
    targets = {}
    for key, name in (("utils", "comfy.utils"), ("sd", "comfy.sd"), ("mm", "comfy.model_management"),
                      ("mp", "comfy.model_patcher"), ("execution", "execution"), ("samplers", "comfy.samplers")):
        try:
            targets[key] = importlib.import_module(name)
        except Exception as e:
            LOG.warning("residency capture: cannot import %s (%s); its hooks are skipped", name, e)
    mm = targets.get("mm")

    def machine_fn(namer):
        import torch
        return machine.collect(mm, torch, namer, argv)

    cap = Capture(conf, machine_fn=machine_fn if mm is not None else None)
    hooks = Hooks(cap).install(targets)
    cap.patches = hooks
    cap.start()
    LOG.info("residency capture: on; traces in %s%s; %s%s", conf.capture_dir,
             ", sent to " + conf.agent_url if conf.agent_url else "", dynamic_vram_line(targets.get("mp"), hooks),
             "; not hooked: " + ", ".join(hooks.missing) if hooks.missing else "")
    return cap


if "comfy.model_management" in sys.modules:
    try:
        CAPTURE = install_into_comfyui()
    except Exception as _e:  # capture must never stop ComfyUI from starting
        LOG.warning("residency capture: not installed: %s: %s", type(_e).__name__, _e)
