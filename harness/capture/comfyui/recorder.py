"""What happened, as trace events (traces/FORMAT.md plus the capture additions).

The recorder knows nothing of ComfyUI's modules; hooks.py calls it with
ComfyUI's objects and reads sizes through a few duck-typed attributes
(patcher.model, patcher.loaded_size(), patcher.model.model_lowvram).

Residency's "model" is a set of weights: ComfyUI's nn.Module behind a
ModelPatcher (clones share it, so they are one model). Semantics the
simulator expects:
- a model is defined (model event) in a trace file before its first use;
- `load` acquires a handle, `release` drops one. Loads during a node are
  released at the node's end, after one `compute` of the node's models whose
  step time is the node's time not spent loading; loads outside any node are
  released at once;
- `delete` when the nn.Module is garbage-collected (its finalizer).
"""
import collections
import threading
import time
import weakref

from .attribution import Attribution

UNLOAD_REASONS = ("free_memory", "unload_all_models", "cleanup_models", "model_unload",
                  "partially_unload", "finalizer", "other")


class ModelRec:
    __slots__ = ("id", "files", "loaded", "defined_in", "patches", "module_ref",
                 "key_bytes", "__weakref__")

    def __init__(self, model_id, module=None):
        self.id = model_id
        self.files = None          # [{"path","bytes","tensors"}] once known
        self.loaded = 0            # bytes on the device, last seen
        self.defined_in = 0        # trace file (writer.seq) it was defined in
        self.patches = {}          # patch ModelRec -> patched_bytes (largest seen), in order
        self.module_ref = weakref.ref(module) if module is not None else None
        self.key_bytes = None      # state-dict key -> bytes, built on first patch


class NodeSpan:
    __slots__ = ("node", "cls", "cached", "t0", "load_ns", "steps", "handles", "loose_files", "patch_rec",
                 "reported")
    # loose_files / patch_rec: attribution.py's, per node

    def __init__(self, node, cls, cached, t0, reported=False):
        self.node, self.cls, self.cached, self.t0 = node, cls, cached, t0
        self.reported = reported   # a cached node already recorded from execution_cached
        self.load_ns = 0
        self.steps = 0
        self.handles = []          # ModelRecs loaded in this node, one per handle
        self.loose_files = []      # files opened here outside a model loader
        self.patch_rec = None      # the patch model those files became


class Recorder:
    def __init__(self, writer, namer, clock=time.monotonic_ns):
        self.writer = writer
        self.namer = namer
        self.clock = clock
        self.t0 = clock()
        self.lock = threading.RLock()
        self.models = {}            # id(nn.Module) -> ModelRec
        self.name_counts = collections.Counter()
        self.deaths = collections.deque()   # filled by finalizers, drained under the lock
        self.prompt = None          # (number, t0)
        self.classes = {}           # node id -> class_type, this prompt's
        self.cached_reported = set()
        self.prompt_count = 0
        self.node = None            # NodeSpan
        self.loading_depth = 0
        self.loading_t0 = 0
        self.reasons = []           # unload reasons, outermost first
        self.files = Attribution(namer, lambda base: ModelRec(self._new_id(base)))

    # ---- emitting -------------------------------------------------------
    def now(self):
        return self.clock() - self.t0

    def _emit(self, obj):
        obj["at_ns"] = int(self.now())
        self.writer.write(obj)

    def _drain_deaths(self):
        while self.deaths:
            key, rec = self.deaths.popleft()
            if self.models.get(key) is rec:
                del self.models[key]
            if rec.defined_in == self.writer.seq and self.writer.is_open:
                if rec.loaded > 0:
                    self._emit({"type": "unload", "model": rec.id, "freed_bytes": int(rec.loaded),
                                "remaining_bytes": 0, "reason": "finalizer"})
                rec.loaded = 0
                self._emit({"type": "delete", "model": rec.id})

    # ---- models ---------------------------------------------------------
    def _new_id(self, base):
        self.name_counts[base] += 1
        n = self.name_counts[base]
        return base if n == 1 else "%s#%d" % (base, n)

    def rec_for(self, patcher, create=True):
        module = patcher.model
        key = id(module)
        rec = self.models.get(key)
        if rec is not None and rec.module_ref is not None and rec.module_ref() is module:
            return rec
        if not create:
            return None
        rec = ModelRec(self._new_id(type(module).__name__), module)
        self.models[key] = rec
        deaths = self.deaths
        weakref.finalize(module, deaths.append, (key, rec)).atexit = False
        return rec

    def _memory_files(self, rec):
        """A model no file was seen for: its weights as they are in memory."""
        module = rec.module_ref() if rec.module_ref is not None else None
        sizes = []
        if module is not None and hasattr(module, "state_dict"):
            for t in module.state_dict().values():
                try:
                    s = int(t.nelement()) * int(t.element_size())
                except Exception:
                    continue
                if s > 0:
                    sizes.append(s)
        if not sizes:
            sizes = [1]
        return [{"path": "memory:" + rec.id, "bytes": sum(sizes), "tensors": sizes}]

    def _define(self, rec):
        seq = self.writer.ensure_open()
        if rec.defined_in == seq:
            return
        self._drain_deaths()
        if rec.files is None:
            rec.files = self._memory_files(rec)
        self._emit({"type": "model", "model": rec.id, "files": rec.files})
        rec.defined_in = seq
        for patch, patched in list(rec.patches.items()):
            self._define(patch)
            self._emit_patch(rec, patch, patched)

    def _emit_patch(self, rec, patch, patched):
        obj = {"type": "patch", "model": rec.id, "patch": patch.id}
        if patched > 0:
            obj["patched_bytes"] = int(patched)
        self._emit(obj)

    def model_bytes(self, rec):
        return sum(f["bytes"] for f in rec.files) if rec.files else 0

    # ---- files (attribution.py decides; the recorder holds the lock) -----
    def loader_begin(self):
        with self.lock:
            self.files.loader_begin()

    def loader_end(self):
        with self.lock:
            return self.files.loader_end()

    def file_opened(self, info, sd=None):
        with self.lock:
            self.files.file_opened(info, sd, self.node.loose_files if self.node is not None else None)

    def assign_files(self, patcher, infos, part=None, keep=None):
        """The model behind `patcher` came from these files; with `keep`,
        only the tensors whose names pass it (one part of a checkpoint)."""
        if patcher is None or not infos:
            return
        with self.lock:
            files = self.files.entries(infos, part, keep)
            if files:
                self.rec_for(patcher).files = files

    def lora_begin(self, sd):
        with self.lock:
            self.files.lora_begin(sd)

    def lora_end(self):
        with self.lock:
            self.files.lora_end()

    # ---- patches --------------------------------------------------------
    def patched(self, patcher, patches, keys):
        """add_patches applied `patches` to these state-dict keys."""
        if not keys:
            return
        with self.lock:
            rec = self.rec_for(patcher)
            if rec.key_bytes is None:
                rec.key_bytes = {}
                for k, t in patcher.model.state_dict().items():
                    try:
                        rec.key_bytes[k] = int(t.nelement()) * int(t.element_size())
                    except Exception:
                        pass
            patched = 0
            for k in keys:
                patched += rec.key_bytes.get(k[0] if isinstance(k, tuple) else k, 0)
            patch = self.files.patch_model(patches, self.node)
            self._define(rec)
            self._define(patch)
            if rec.files:
                patched = min(patched, self.model_bytes(rec))
            self._emit_patch(rec, patch, patched)
            rec.patches[patch] = max(patched, rec.patches.get(patch, 0))

    # ---- loads and unloads ----------------------------------------------
    def loading_begin(self):
        with self.lock:
            if self.loading_depth == 0:
                self.loading_t0 = self.clock()
            self.loading_depth += 1

    def loading_end(self):
        with self.lock:
            self.loading_depth = max(0, self.loading_depth - 1)
            if self.loading_depth == 0 and self.node is not None:
                self.node.load_ns += self.clock() - self.loading_t0

    def loaded(self, patcher):
        """A load finished: acquire a handle (released at the node's end)."""
        with self.lock:
            rec = self.rec_for(patcher)
            loaded = int(patcher.loaded_size())
            rec.loaded = loaded
            self._define(rec)
            if getattr(patcher.model, "model_lowvram", False):
                self._emit({"type": "load", "model": rec.id, "mode": "partial", "device_bytes": max(1, loaded)})
            else:
                self._emit({"type": "load", "model": rec.id, "mode": "full"})
            if self.node is not None:
                self.node.handles.append(rec)
            else:
                self._emit({"type": "release", "model": rec.id})

    def reason_begin(self, reason):
        with self.lock:
            self.reasons.append(reason)

    def reason_end(self):
        with self.lock:
            if self.reasons:
                self.reasons.pop()
            if not self.reasons:
                self._drain_if_open()

    def unloaded(self, patcher, freed, remaining, default_reason, always=False):
        """Bytes left the device. Dropped for a model the open trace file
        never defined (it was loaded in an earlier file, or never seen)."""
        with self.lock:
            rec = self.rec_for(patcher, create=False)
            if rec is None:
                return
            rec.loaded = int(remaining)
            if freed <= 0 and not always:
                return
            if not self.writer.is_open or rec.defined_in != self.writer.seq:
                return
            reason = self.reasons[0] if self.reasons else default_reason
            self._emit({"type": "unload", "model": rec.id, "freed_bytes": int(max(0, freed)),
                        "remaining_bytes": int(max(0, remaining)), "reason": reason})

    def _drain_if_open(self):
        if self.deaths and self.writer.is_open:
            self._drain_deaths()
        elif self.deaths and not self.writer.is_open:
            # Nothing of theirs is in a file yet: forget them.
            while self.deaths:
                key, rec = self.deaths.popleft()
                if self.models.get(key) is rec:
                    del self.models[key]

    def collect(self):
        """Emit what finalizers reported (called at quiet points)."""
        with self.lock:
            self._drain_if_open()

    # ---- prompts and nodes ----------------------------------------------
    def prompt_begin(self):
        with self.lock:
            if self.prompt is not None:
                return False
            self.prompt_count += 1
            self.prompt = (self.prompt_count, self.clock())
            self.writer.ensure_open()
            self._drain_deaths()
            self._emit({"type": "prompt_begin", "prompt": self.prompt_count})
            return True

    def prompt_end(self):
        with self.lock:
            if self.prompt is None:
                return
            if self.node is not None:
                self.node_end()
            number, t0 = self.prompt
            self.prompt = None
            self._drain_deaths()
            self._emit({"type": "prompt_end", "prompt": number, "measured_wall_ns": int(self.clock() - t0)})
            self.writer.prompt_done()

    def prompt_classes(self, classes):
        """node id -> class_type of the prompt that starts (nothing else of it)."""
        with self.lock:
            self.classes = classes
            self.cached_reported = set()

    def cached_nodes(self, node_ids):
        """ComfyUI's execution_cached message: these nodes' outputs come from
        the cache; those never staged run no code at all. One node event each."""
        with self.lock:
            if self.prompt is None:
                return
            for node_id in node_ids:
                node_id = str(node_id)
                if node_id in self.cached_reported:
                    continue
                self.cached_reported.add(node_id)
                self._emit({"type": "node", "prompt": self.prompt[0], "node": node_id,
                            "class": str(self.classes.get(node_id, "?")), "duration_ns": 0, "cached": True})

    def node_begin(self, node_id, class_type, cached):
        with self.lock:
            if self.node is not None:
                self.node_end()
            node_id = str(node_id)
            self.node = NodeSpan(node_id, str(class_type), bool(cached), self.clock(),
                                 reported=bool(cached) and node_id in self.cached_reported)

    def sampling(self, steps):
        with self.lock:
            if self.node is not None and steps > 0:
                self.node.steps += int(steps)

    def node_end(self):
        with self.lock:
            node = self.node
            if node is None:
                return
            self.node = None
            if self.prompt is None:
                return
            duration = self.clock() - node.t0
            if node.cached and not node.handles:
                if node.reported:
                    return
                self.cached_reported.add(node.node)
                self._emit({"type": "node", "prompt": self.prompt[0], "node": node.node,
                            "class": node.cls, "duration_ns": 0, "cached": True})
                return
            models, seen = [], set()
            for rec in node.handles:
                if rec.id not in seen:
                    seen.add(rec.id)
                    models.append(rec.id)
            compute_ns = max(0, duration - node.load_ns)
            steps = max(1, node.steps) if models else 1
            if models or compute_ns > 0:
                self._emit({"type": "compute", "models": models, "steps": steps,
                            "step_ns": int(compute_ns // steps), "activation_bytes": 0})
            for rec in node.handles:
                self._emit({"type": "release", "model": rec.id})
            self._emit({"type": "node", "prompt": self.prompt[0], "node": node.node,
                        "class": node.cls, "duration_ns": int(duration), "cached": False})

    # ---- the end --------------------------------------------------------
    def finish(self):
        """Server exit: publish the open trace unless a prompt is running
        (then it stays partial and the next start keeps its finished prompts)."""
        with self.lock:
            if self.prompt is not None:
                self.writer.abandon()
                return None
            if self.writer.is_open:
                self._drain_deaths()
            return self.writer.finish()

