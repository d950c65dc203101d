"""The hook points in ComfyUI (checked against upstream 3cd7b32, v0.8.0, and
against the newest API's documented signatures for dynamic VRAM: tests use a
stand-in of it, tests/fakes.py) and what each
tells the recorder. Every hook is a pass-through wrapper (guard.py); no
ComfyUI file or node graph is changed.

targets: a dict of the modules to hook, any of them may be missing:
  utils     comfy.utils            load_torch_file
  sd        comfy.sd               load_checkpoint_guess_config, load_diffusion_model,
                                   load_clip, load_lora_for_models
  mm        comfy.model_management load_models_gpu, free_memory, unload_all_models,
                                   cleanup_models, LoadedModel.model_load / model_unload
  mp        comfy.model_patcher    ModelPatcher.load / partially_unload / detach / add_patches, and
                                   ModelPatcherDynamic.load / partially_unload (dynamic VRAM) where
                                   that class exists
  execution execution              PromptExecutor.execute_async (or execute), add_message
                                   (execution_cached), execute (one node)
  samplers  comfy.samplers         CFGGuider.outer_sample (the step count)
"""
import inspect

from .attribution import FileInfo
from .guard import Patches, arg, wrap_async, wrap_sync
from .safetensors_header import HeaderError, is_safetensors, read_tensor_sizes, tensor_sizes_from_state_dict

# Key prefixes of a full checkpoint's parts (comfy/supported_models_base.py
# defaults; a model's config may name others).
VAE_PREFIXES = ("first_stage_model.",)
TE_PREFIXES = ("cond_stage_model.",)
CLIPVISION_PREFIXES = ("clip_vision.", "conditioner.embedders.0.transformer.", "embedders.")


def file_info(path, sd):
    """Tensor sizes from the safetensors header (the weights are not read
    again); for other formats from the loaded tensors' metadata."""
    path = str(path)
    if is_safetensors(path):
        try:
            return FileInfo(path, read_tensor_sizes(path))
        except (OSError, HeaderError):
            pass
    return FileInfo(path, tensor_sizes_from_state_dict(sd) if isinstance(sd, dict) else [])


def _prefixes(value, default):
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and value:
        return tuple(str(v) for v in value)
    return default


def _patcher_of(obj):
    """A ModelPatcher, or the .patcher of a CLIP / VAE / CLIPVision."""
    if obj is None:
        return None
    if hasattr(obj, "loaded_size") and hasattr(obj, "model"):
        return obj
    p = getattr(obj, "patcher", None)
    return p if p is not None and hasattr(p, "loaded_size") else None


class Hooks:
    def __init__(self, capture):
        self.capture = capture
        self.rec = capture.recorder
        self.guard = capture.guard
        self.patches = Patches()
        self.installed = []
        self.missing = []
        self.in_model_load = 0

    # ---- installing -------------------------------------------------------
    def _hook(self, owner, name, where, before=None, after=None, on_error=None):
        """Wrap owner.name (a coroutine function gets an async wrapper)."""
        if owner is None or not hasattr(owner, name):
            self.missing.append(where)
            return

        def make(orig):
            wrap = wrap_async if inspect.iscoroutinefunction(orig) else wrap_sync
            return wrap(self.guard, orig, where, before, after, on_error)

        if self.patches.replace(owner, name, make):
            self.installed.append(where)

    def install(self, targets):
        utils, sd, mm = targets.get("utils"), targets.get("sd"), targets.get("mm")
        mp, execution, samplers = targets.get("mp"), targets.get("execution"), targets.get("samplers")
        rec = self.rec

        # Files. Time inside a loader counts as loading; a file a custom node
        # reads counts as loading only when a model or patch is made of it.
        self._hook(utils, "load_torch_file", "comfy.utils.load_torch_file", before=lambda a, k: rec.file_begin(),
                   after=self._file_opened)
        for name, split in (("load_checkpoint_guess_config", self._split_checkpoint),
                            ("load_diffusion_model", self._whole_file),
                            ("load_clip", self._whole_file)):
            self._hook(sd, name, "comfy.sd." + name, before=self._loader_begin,
                       after=split, on_error=self._loader_failed)
        self._hook(sd, "load_lora_for_models", "comfy.sd.load_lora_for_models",
                   before=lambda a, k: rec.lora_begin(arg(a, k, 2, "lora")),
                   after=lambda c, a, k, r: rec.lora_end(), on_error=lambda c, a, k, e: rec.lora_end())

        # Loads
        self._hook(mm, "load_models_gpu", "comfy.model_management.load_models_gpu",
                   before=lambda a, k: rec.loading_begin(),
                   after=lambda c, a, k, r: rec.loading_end(), on_error=lambda c, a, k, e: rec.loading_end())
        loaded_model = getattr(mm, "LoadedModel", None) if mm is not None else None
        self._hook(loaded_model, "model_load", "LoadedModel.model_load", before=self._model_load_begin,
                   after=self._model_load_end, on_error=self._model_load_failed)
        model_patcher = getattr(mp, "ModelPatcher", None) if mp is not None else None
        # ComfyUI's dynamic VRAM (>= 0.12): a subclass whose load and
        # partially_unload never call the base's, so its own are hooked too.
        # Absent on older ComfyUI (then only the classic patcher exists).
        dynamic = getattr(mp, "ModelPatcherDynamic", None) if mp is not None else None
        self.dynamic_class = dynamic
        self._hook(model_patcher, "load", "ModelPatcher.load", after=self._patcher_load)
        if dynamic is not None and "load" in vars(dynamic):
            self._hook(dynamic, "load", "ModelPatcherDynamic.load", after=self._patcher_load)

        # Unloads: why (outermost call wins), then what
        for owner, name, reason in ((mm, "free_memory", "free_memory"),
                                    (mm, "unload_all_models", "unload_all_models"),
                                    (mm, "cleanup_models", "cleanup_models"),
                                    (loaded_model, "model_unload", "model_unload")):
            where = ("LoadedModel." if owner is loaded_model else "comfy.model_management.") + name
            self._hook(owner, name, where, before=lambda a, k, r=reason: rec.reason_begin(r),
                       after=lambda c, a, k, res: rec.reason_end(), on_error=lambda c, a, k, e: rec.reason_end())
        self._hook(model_patcher, "partially_unload", "ModelPatcher.partially_unload", after=self._partially_unloaded)
        if dynamic is not None and "partially_unload" in vars(dynamic):
            self._hook(dynamic, "partially_unload", "ModelPatcherDynamic.partially_unload",
                       after=self._partially_unloaded)
        self._hook(model_patcher, "detach", "ModelPatcher.detach", before=self._detach_begin, after=self._detached)

        # Patches
        self._hook(model_patcher, "add_patches", "ModelPatcher.add_patches",
                   after=lambda c, a, k, keys: rec.patched(a[0], arg(a, k, 1, "patches"), keys))

        # Prompts and nodes
        executor = getattr(execution, "PromptExecutor", None) if execution is not None else None
        if executor is not None and hasattr(executor, "execute_async"):
            self._hook(executor, "execute_async", "PromptExecutor.execute_async",
                        before=self._prompt_begin, after=self._prompt_done, on_error=self._prompt_failed)
        else:
            self._hook(executor, "execute", "PromptExecutor.execute",
                       before=self._prompt_begin, after=self._prompt_done, on_error=self._prompt_failed)
        self._hook(executor, "add_message", "PromptExecutor.add_message", before=self._message)
        self._hook(execution, "execute", "execution.execute", before=self._node_begin,
                    after=self._node_end, on_error=lambda c, a, k, e: self._node_end(c, a, k, None))

        guider = getattr(samplers, "CFGGuider", None) if samplers is not None else None
        self._hook(guider, "outer_sample", "CFGGuider.outer_sample", before=self._sampling)
        return self

    def uninstall(self):
        self.patches.undo()

    # ---- files ------------------------------------------------------------
    def _file_opened(self, ctx, args, kwargs, result):
        sd = result[0] if isinstance(result, tuple) else result
        self.rec.file_opened(file_info(arg(args, kwargs, 0, "ckpt"), sd), sd, ctx)

    # A model loader's time is loading only while it reads files: building
    # the model (a Python object graph, seconds for a big one) is the node's
    # compute, which a replay does not otherwise have.
    def _loader_begin(self, args, kwargs):
        self.rec.loader_begin()

    def _loader_failed(self, ctx, args, kwargs, exc):
        self.rec.loader_end()

    def _whole_file(self, ctx, args, kwargs, result):
        infos = self.rec.loader_end()
        self.rec.assign_files(_patcher_of(result), infos)

    def _split_checkpoint(self, ctx, args, kwargs, result):
        """A full checkpoint (unet + text encoder + VAE [+ CLIP vision]): its
        tensors go to the part whose key prefix they carry; path#part."""
        infos = self.rec.loader_end()
        if not isinstance(result, (tuple, list)):
            return
        parts = list(result) + [None] * 4
        unet = _patcher_of(parts[0])
        config = getattr(getattr(unet, "model", None), "model_config", None)
        vae = _prefixes(getattr(config, "vae_key_prefix", None), VAE_PREFIXES)
        te = _prefixes(getattr(config, "text_encoder_key_prefix", None), TE_PREFIXES)
        cv = CLIPVISION_PREFIXES

        def owner(key):
            if key.startswith(vae):
                return "vae"
            if key.startswith(te):
                return "clip"
            if key.startswith(cv):
                return "clipvision"
            return "unet"

        for part, obj in (("unet", parts[0]), ("clip", parts[1]), ("vae", parts[2]), ("clipvision", parts[3])):
            self.rec.assign_files(_patcher_of(obj), infos, part, keep=lambda k, p=part: owner(k) == p)

    # ---- loads ------------------------------------------------------------
    def _model_load_begin(self, args, kwargs):
        self.in_model_load += 1
        self.rec.loading_begin()

    def _model_load_end(self, ctx, args, kwargs, result):
        self.in_model_load -= 1
        self.rec.loading_end()
        patcher = args[0].model
        if patcher is not None:
            self.rec.loaded(patcher)

    def _model_load_failed(self, ctx, args, kwargs, exc):
        self.in_model_load -= 1
        self.rec.loading_end()

    def _patcher_load(self, ctx, args, kwargs, result):
        """ModelPatcher.load called other than through LoadedModel.model_load."""
        if self.in_model_load == 0:
            self.rec.loaded(args[0])

    # ---- unloads ----------------------------------------------------------
    def _partially_unloaded(self, ctx, args, kwargs, freed):
        patcher = args[0]
        self.rec.unloaded(patcher, int(freed or 0), int(patcher.loaded_size()), "partially_unload", always=True)

    def _detach_begin(self, args, kwargs):
        if not arg(args, kwargs, 1, "unpatch_all", True):
            return None
        return (int(args[0].loaded_size()), self.rec.freed_so_far(args[0]))

    def _detached(self, before, args, kwargs, result):
        if before is None:
            return
        patcher = args[0]
        after = int(patcher.loaded_size())
        # What a partially_unload inside the detach recorded already (the
        # dynamic patcher's unpatch_model calls it) is not freed twice.
        inner = self.rec.freed_so_far(patcher) - before[1]
        self.rec.unloaded(patcher, before[0] - after - inner, after, "other")

    # ---- prompts and nodes ------------------------------------------------
    def _prompt_begin(self, args, kwargs):
        started = self.rec.prompt_begin()
        if started:
            prompt = arg(args, kwargs, 1, "prompt")
            classes = {}
            if isinstance(prompt, dict):
                for node_id, node in prompt.items():
                    if isinstance(node, dict):
                        classes[str(node_id)] = str(node.get("class_type", "?"))
            self.rec.prompt_classes(classes)
        return started

    def _message(self, args, kwargs):
        event = arg(args, kwargs, 1, "event")
        if event in ("execution_error", "execution_interrupted"):
            self.rec.prompt_outcome("failed" if event == "execution_error" else "interrupted")
        if event == "execution_cached":
            data = arg(args, kwargs, 2, "data")
            if isinstance(data, dict) and isinstance(data.get("nodes"), (list, tuple)):
                self.rec.cached_nodes(data["nodes"])

    def _prompt_done(self, started, args, kwargs, result):
        if started:
            self.rec.prompt_end()

    def _prompt_failed(self, started, args, kwargs, exc):
        if started:
            interrupted = type(exc).__name__ in ("InterruptProcessingException", "KeyboardInterrupt")
            self.rec.prompt_outcome("interrupted" if interrupted else "failed")
            self.rec.prompt_end()

    def _node_begin(self, args, kwargs):
        dynprompt = arg(args, kwargs, 1, "dynprompt")
        caches = arg(args, kwargs, 2, "caches")
        node_id = arg(args, kwargs, 3, "current_item")
        class_type = dynprompt.get_node(node_id)["class_type"]
        self.rec.sample_resident()
        self.rec.node_begin(node_id, class_type, _is_cached(caches, node_id))

    def _node_end(self, ctx, args, kwargs, result):
        self.rec.node_end()
        self.rec.sample_resident()

    def _sampling(self, args, kwargs):
        sigmas = arg(args, kwargs, 4, "sigmas")
        shape = getattr(sigmas, "shape", None)
        if shape is not None and len(shape) > 0:
            self.rec.sampling(int(shape[-1]) - 1)


def _is_cached(caches, node_id):
    """Whether execution.execute will answer this node from the output
    cache: the same lookup it makes, through the cache's side-effect-free
    internals (get() would touch LRU / RAM-pressure bookkeeping)."""
    try:
        outputs = caches.outputs
        get_cache_for = getattr(outputs, "_get_cache_for", None)
        if get_cache_for is None:
            return False
        cache = get_cache_for(node_id)
        return cache is not None and cache._get_immediate(node_id) is not None
    except Exception:
        return False
