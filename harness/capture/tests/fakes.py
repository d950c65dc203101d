"""Stand-ins for the ComfyUI functions capture hooks, with the same names,
signatures and memory bookkeeping (comfy/model_management.py and
comfy/model_patcher.py at 3cd7b32, much reduced). No torch, no ComfyUI.

build() returns a fresh set of modules, so each test hooks its own.

build(dynamic=True) adds a STAND-IN for the newest ComfyUI's dynamic VRAM
(ModelPatcherDynamic, ComfyUI >= 0.16 on NVIDIA), written in our own words
from its documented behaviour (docs/CAPTURE.md, "Versions and paths covered"): the real
one needs a GPU and comfy-aimdo, so no test here can run it. What the
stand-in keeps of it: the subclass overrides load, partially_load and
partially_unload without calling the base's; load stages the weights and
leaves loaded_size() near zero; weights become resident as they are used;
comfy-aimdo evicts other models' resident weights on demand with no Python
call; unpatch_model (from detach) calls the subclass's partially_unload;
model_lowvram is never set.
"""
import json
import logging
import struct
import types
import weakref

LOG = logging.getLogger("fakecomfy")
MB = 1024 * 1024


class Tensor:
    def __init__(self, nbytes):
        self._n = nbytes

    def nelement(self):
        return self._n // 4

    def element_size(self):
        return 4


class Net:
    """An nn.Module: a state dict of named tensors."""

    def __init__(self, sizes, name="TinyNet"):
        self.sd = {"layer%d.weight" % i: Tensor(s) for i, s in enumerate(sizes)}
        self.__class__ = type(name, (Net,), {})
        self.model_loaded_weight_memory = 0
        self.model_lowvram = False
        self.model_offload_buffer_memory = 0

    def state_dict(self):
        return dict(self.sd)


def write_safetensors(path, sizes, pad_data=True, names=None):
    """A safetensors file with tensors t0..tn (or `names`) of these byte sizes (F32)."""
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for i, s in enumerate(sizes):
        name = names[i] if names else "t%d" % i
        header[name] = {"dtype": "F32", "shape": [s // 4], "data_offsets": [off, off + s]}
        off += s
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        if pad_data:
            f.write(b"\0" * off)
    return 8 + len(h) + off


def build(dynamic=False):
    m = types.SimpleNamespace()

    # ---- comfy.model_patcher ------------------------------------------
    class ModelPatcher:
        def __init__(self, model, load_device="cuda", offload_device="cpu"):
            self.model = model
            self.load_device, self.offload_device = load_device, offload_device
            self.patches = {}
            self.parent = None

        def model_size(self):
            return sum(t._n for t in self.model.sd.values())

        def loaded_size(self):
            return self.model.model_loaded_weight_memory

        def clone(self):
            n = ModelPatcher(self.model, self.load_device, self.offload_device)
            n.patches = dict(self.patches)
            n.parent = self
            return n

        def add_patches(self, patches, strength_patch=1.0, strength_model=1.0):
            p = [k for k in patches if k in self.model.sd]
            for k in p:
                self.patches.setdefault(k, []).append(patches[k])
            return p

        def load(self, device_to=None, lowvram_model_memory=0, force_patch_weights=False, full_load=False):
            size = self.model_size()
            if full_load or lowvram_model_memory >= size:
                self.model.model_loaded_weight_memory = size
                self.model.model_lowvram = False
                LOG.info("loaded completely; %.2f MB usable, %.2f MB loaded, full load: %s",
                         lowvram_model_memory / MB, size / MB, full_load)
            else:
                got = 0
                for t in self.model.sd.values():
                    if got + t._n <= lowvram_model_memory:
                        got += t._n
                self.model.model_loaded_weight_memory = got
                self.model.model_lowvram = True
                LOG.info("loaded partially; %.2f MB usable, %.2f MB loaded, %.2f MB offloaded",
                         lowvram_model_memory / MB, got / MB, (size - got) / MB)

        def partially_load(self, device_to, extra_memory=0, force_patch_weights=False):
            before = self.loaded_size()
            if not self.model.model_lowvram and before > 0:
                return 0
            full = before + extra_memory >= self.model_size()
            self.load(device_to, lowvram_model_memory=before + extra_memory, full_load=full)
            return self.loaded_size() - before

        def partially_unload(self, device_to, memory_to_free=0, force_patch_weights=False):
            freed = 0
            for t in self.model.sd.values():
                if freed >= memory_to_free or freed + t._n > self.loaded_size():
                    break
                freed += t._n
            self.model.model_loaded_weight_memory -= freed
            self.model.model_lowvram = True
            LOG.info("Unloaded partially: %.2f MB freed, %.2f MB remains loaded", freed / MB, self.loaded_size() / MB)
            return freed

        def unpatch_model(self, device_to=None, unpatch_weights=True):
            if unpatch_weights:
                self.model.model_loaded_weight_memory = 0
                self.model.model_lowvram = False

        def detach(self, unpatch_all=True):
            self.unpatch_model(self.offload_device, unpatch_weights=unpatch_all)
            return self.model

    mp = types.ModuleType("fake_model_patcher")
    mp.ModelPatcher = ModelPatcher
    mp.CoreModelPatcher = ModelPatcher
    m.mp = mp
    if dynamic:
        build_dynamic(m, ModelPatcher)

    # ---- comfy.model_management ---------------------------------------
    mm = types.ModuleType("fake_model_management")
    mm.current_loaded_models = []

    class LoadedModel:
        def __init__(self, model):
            self._model = weakref.ref(model)
            self.device = model.load_device

        @property
        def model(self):
            return self._model()

        def model_load(self, lowvram_model_memory=0, force_patch_weights=False):
            use = lowvram_model_memory if lowvram_model_memory else 1e32
            self.model.partially_load(self.device, use, force_patch_weights=force_patch_weights)
            return self.model.model

        def model_unload(self, memory_to_free=None, unpatch_weights=True):
            if memory_to_free is not None and memory_to_free < self.model.loaded_size():
                freed = self.model.partially_unload(self.model.offload_device, memory_to_free)
                if freed >= memory_to_free:
                    return False
            self.model.detach(unpatch_weights)
            return True

        def __eq__(self, other):
            return self.model is other.model

    def free_memory(memory_required, device, keep_loaded=[]):
        unloaded = []
        for lm in list(mm.current_loaded_models):
            if lm.model_unload(None if memory_required >= 1e30 else memory_required):
                mm.current_loaded_models.remove(lm)
                unloaded.append(lm)
        return unloaded

    def load_models_gpu(models, memory_required=0, force_patch_weights=False, minimum_memory_required=None,
                        force_full_load=False):
        for x in models:
            lm = LoadedModel(x)
            if lm in mm.current_loaded_models:
                lm = mm.current_loaded_models[mm.current_loaded_models.index(lm)]
            else:
                LOG.info("Requested to load %s", type(x.model).__name__)
                mm.current_loaded_models.insert(0, lm)
            lm.model_load(mm.lowvram)

    def unload_all_models():
        free_memory(1e30, "cuda")

    def cleanup_models():
        mm.current_loaded_models[:] = [lm for lm in mm.current_loaded_models if lm.model is not None]

    def get_torch_device():
        return types.SimpleNamespace(type="cuda")

    mm.lowvram = 0
    mm.LoadedModel = LoadedModel
    mm.free_memory, mm.load_models_gpu = free_memory, load_models_gpu
    mm.unload_all_models, mm.cleanup_models = unload_all_models, cleanup_models
    mm.get_torch_device = get_torch_device
    mm.get_torch_device_name = lambda dev: "cuda:0 Fake GPU"
    mm.get_total_memory = lambda dev: 24 * 1024 ** 3
    m.mm = mm

    # ---- comfy.utils / comfy.sd ---------------------------------------
    utils = types.ModuleType("fake_utils")

    def load_torch_file(ckpt, safe_load=False, device=None, return_metadata=False):
        with open(ckpt, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        header.pop("__metadata__", None)
        sd = {k: Tensor(v["data_offsets"][1] - v["data_offsets"][0]) for k, v in header.items()}
        return (sd, {}) if return_metadata else sd

    utils.load_torch_file = load_torch_file
    m.utils = utils

    sd = types.ModuleType("fake_sd")

    def load_diffusion_model(unet_path, model_options={}):
        state, _ = utils.load_torch_file(unet_path, return_metadata=True)
        return ModelPatcher(Net([t._n for t in state.values()], "WAN21"))

    class Part:
        def __init__(self, patcher):
            self.patcher = patcher

    def load_checkpoint_guess_config(ckpt_path, output_vae=True, output_clip=True, output_clipvision=False,
                                     embedding_directory=None, output_model=True, model_options={},
                                     te_model_options={}):
        state, _ = utils.load_torch_file(ckpt_path, return_metadata=True)
        part = lambda p: [t._n for k, t in state.items() if k.startswith(p)]  # noqa: E731
        unet = ModelPatcher(Net(part("model.diffusion_model."), "SDXL"))
        unet.model.model_config = types.SimpleNamespace(vae_key_prefix=["first_stage_model."],
                                                        text_encoder_key_prefix=["conditioner.embedders."])
        clip = Part(ModelPatcher(Net(part("conditioner.embedders."), "SDXLClipModel")))
        vae = Part(ModelPatcher(Net(part("first_stage_model."), "AutoencoderKL")))
        return (unet, clip, vae, None)

    def load_clip(ckpt_paths, embedding_directory=None, clip_type=None, model_options={}):
        sizes = []
        for p in ckpt_paths:
            sizes += [t._n for t in utils.load_torch_file(p, safe_load=True).values()]
        return Part(ModelPatcher(Net(sizes, "T5")))

    def load_lora_for_models(model, clip, lora, strength_model, strength_clip):
        new = model.clone()
        new.add_patches({k.replace("lora.", ""): (v,) for k, v in lora.items()}, strength_model)
        return (new, None)

    sd.load_diffusion_model, sd.load_checkpoint_guess_config = load_diffusion_model, load_checkpoint_guess_config
    sd.load_clip, sd.load_lora_for_models = load_clip, load_lora_for_models
    m.sd = sd

    # ---- execution ----------------------------------------------------
    execution = types.ModuleType("fake_execution")

    class Cache:
        def __init__(self):
            self.store = {}

        def _get_cache_for(self, node_id):
            return self

        def _get_immediate(self, node_id):
            return self.store.get(node_id)

    class DynPrompt:
        def __init__(self, prompt):
            self.prompt = prompt

        def get_node(self, node_id):
            return self.prompt[node_id]

    async def execute(server, dynprompt, caches, current_item, extra_data, executed, prompt_id, execution_list,
                      pending_subgraph_results, pending_async_nodes, ui_outputs):
        cached = caches.outputs._get_immediate(current_item)
        if cached is not None:
            return ("SUCCESS", None, None)
        node = dynprompt.get_node(current_item)
        out = node["fn"]()
        caches.outputs.store[current_item] = out
        return ("SUCCESS", None, None)

    class PromptExecutor:
        def __init__(self, server=None):
            self.caches = types.SimpleNamespace(outputs=Cache())
            self.status_messages = []

        def add_message(self, event, data, broadcast):
            self.status_messages.append((event, data))

        def execute(self, prompt, prompt_id, extra_data={}, execute_outputs=[]):
            import asyncio
            return asyncio.run(self.execute_async(prompt, prompt_id, extra_data, execute_outputs))

        async def execute_async(self, prompt, prompt_id, extra_data={}, execute_outputs=[]):
            self.add_message("execution_start", {"prompt_id": prompt_id}, broadcast=False)
            dyn = DynPrompt(prompt)
            cached = [n for n in prompt if self.caches.outputs._get_immediate(n) is not None]
            self.add_message("execution_cached", {"nodes": cached, "prompt_id": prompt_id}, broadcast=False)
            # upstream cached nodes are never staged; cached outputs are
            for node_id in prompt:
                if node_id in cached and node_id not in execute_outputs:
                    continue
                await execution.execute(None, dyn, self.caches, node_id, extra_data, set(), prompt_id,
                                        None, {}, {}, {})
            self.add_message("execution_success", {"prompt_id": prompt_id}, broadcast=False)
            return "done:" + prompt_id

    execution.execute = execute
    execution.PromptExecutor = PromptExecutor
    m.execution = execution

    samplers = types.ModuleType("fake_samplers")

    class CFGGuider:
        def __init__(self, model_patcher):
            self.model_patcher = model_patcher

        def outer_sample(self, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None,
                         disable_pbar=False, seed=None, latent_shapes=None):
            mm.load_models_gpu([self.model_patcher])
            return ("sampled", len(sigmas.shape))

    samplers.CFGGuider = CFGGuider
    m.samplers = samplers
    return m


def build_dynamic(m, ModelPatcher):
    """The dynamic-VRAM stand-in (see the module's docstring)."""
    mp = m.mp
    mp.VRAM = 3 * MB          # what comfy-aimdo may make resident, all dynamic models together
    mp.resident_order = []    # dynamic patchers by last use, oldest first (aimdo's priority list)
    ModelPatcher.is_dynamic = lambda self: False

    class ModelPatcherDynamic(ModelPatcher):
        def is_dynamic(self):
            return True

        def load(self, device_to=None, lowvram_model_memory=0, force_patch_weights=False, full_load=False,
                 dirty=False):
            assert not force_patch_weights and not full_load
            # Stages every weight in the model's address range; nothing is resident yet.
            LOG.info("Model %s prepared for dynamic VRAM loading. %.2f MB Staged. %d patches attached.",
                     type(self.model).__name__, self.model_size() / MB, len(self.patches))

        def partially_load(self, device_to, extra_memory=0, force_patch_weights=False):
            assert not force_patch_weights
            self.load(device_to, dirty=False)
            return None

        def partially_unload(self, device_to, memory_to_free=0, force_patch_weights=False):
            freed = min(int(memory_to_free), self.loaded_size())
            self.model.model_loaded_weight_memory -= freed
            if self.loaded_size() == 0 and self in mp.resident_order:
                mp.resident_order.remove(self)
            return freed

        def unpatch_model(self, device_to=None, unpatch_weights=True):
            super().unpatch_model(device_to=None, unpatch_weights=False)
            if unpatch_weights:
                self.partially_unload(None, 1e32)

        def use(self, nbytes):
            """A forward pass touches `nbytes` of weights: they become resident,
            and aimdo frees the least recently used other models' pages first,
            with no call into Python (what capture cannot hook)."""
            want = min(int(nbytes), self.model_size())
            if self in mp.resident_order:
                mp.resident_order.remove(self)
            held = sum(p.loaded_size() for p in mp.resident_order)
            for other in list(mp.resident_order):
                if held + want <= mp.VRAM:
                    break
                take = min(other.loaded_size(), held + want - mp.VRAM)
                other.model.model_loaded_weight_memory -= take
                held -= take
                if other.loaded_size() == 0:
                    mp.resident_order.remove(other)
            self.model.model_loaded_weight_memory = max(self.loaded_size(), want)
            mp.resident_order.append(self)

    mp.ModelPatcherDynamic = ModelPatcherDynamic
    mp.CoreModelPatcher = ModelPatcherDynamic


def targets(m):
    return {"utils": m.utils, "sd": m.sd, "mm": m.mm, "mp": m.mp, "execution": m.execution, "samplers": m.samplers}
