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
                  "partially_unload", "finalizer", "on_demand", "other")


def is_dynamic(patcher):
    """A ModelPatcherDynamic (ComfyUI's dynamic VRAM); False on older ComfyUI."""
    try:
        fn = getattr(patcher, "is_dynamic", None)
        return bool(fn()) if callable(fn) else False
    except Exception:
        return False


class ModelRec:
    __slots__ = ("id", "files", "loaded", "defined_in", "patches", "module_ref",
                 "key_bytes", "patcher_ref", "mode", "freed_total", "__weakref__")

    def __init__(self, model_id, module=None):
        self.id = model_id
        self.files = None          # [{"path","bytes","tensors"}] once known
        self.loaded = 0            # bytes on the device, last seen
        self.defined_in = 0        # trace file (writer.seq) it was defined in
        self.patches = {}          # patch ModelRec -> patched_bytes (largest seen), in order
        self.module_ref = weakref.ref(module) if module is not None else None
        self.key_bytes = None      # state-dict key -> bytes, built on first patch
        self.patcher_ref = None    # the patcher that loaded it last (its resident size is read at node edges)
        self.mode = "full"         # how it was loaded last: full, partial or dynamic
        self.freed_total = 0       # bytes its unload events freed, in all


class NodeSpan:
    __slots__ = ("node", "cls", "cached", "t0", "load_ns", "steps", "handles", "loose_files", "patch_rec",
                 "reported", "file_ns")
    # loose_files / patch_rec: attribution.py's, per node

    def __init__(self, node, cls, cached, t0, reported=False):
        self.node, self.cls, self.cached, self.t0 = node, cls, cached, t0
        self.reported = reported   # a cached node already recorded from execution_cached
        self.load_ns = 0
        self.steps = 0
        self.handles = []          # ModelRecs loaded in this node, one per handle
        self.loose_files = []      # files opened here outside a model loader
        self.patch_rec = None      # the patch model those files became
        self.file_ns = 0           # time reading loose files (loading if a model or patch uses them)


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
        self.outcome = None         # how the running prompt ends, when not ok (failed, interrupted)
        self.prompt_node_ns = 0     # the running prompt's time inside nodes
        self.files = Attribution(namer, lambda base: ModelRec(self._new_id(base)))
        writer.on_open = self._carry_over

    # ---- emitting -------------------------------------------------------
    def now(self):
        return self.clock() - self.t0

    def _emit(self, obj):
        obj["at_ns"] = int(self.now())
        self.writer.write(obj)

    def _drain_deaths(self):
        # A model collected while the running node still holds it (a custom
        # node's own patcher dropped when the node returns) dies after the
        # node's compute and releases: a delete before them is a compute on a
        # deleted model (found by the real-server trial).
        held = set(self.node.handles) if self.node is not None else set()
        later = collections.deque()
        while self.deaths:
            key, rec = self.deaths.popleft()
            if rec in held:
                later.append((key, rec))
                continue
            if self.models.get(key) is rec:
                del self.models[key]
            if rec.defined_in == self.writer.seq and self.writer.is_open:
                if rec.loaded > 0:
                    self._emit({"type": "unload", "model": rec.id, "freed_bytes": int(rec.loaded),
                                "remaining_bytes": 0, "reason": "finalizer"})
                rec.loaded = 0
                self._emit({"type": "delete", "model": rec.id})
        self.deaths.extend(later)

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
        """A model no loader named a file for: the file a custom node opened
        with load_torch_file whose tensors add up to its weights (its
        identity, so a replay reads it), else its weights as they are in
        memory."""
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
        adopted = self.files.adopt(sum(sizes), self.node.loose_files if self.node is not None else None)
        if adopted:
            return adopted
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

    def _carry_over(self, seq):
        """A new file (rotation) starts with the models still on the device
        as they were, loaded before its first prompt (outside any prompt's
        time), so a replay does not pay loads the server never paid."""
        if seq <= 1:
            return
        for rec in list(self.models.values()):
            module = rec.module_ref() if rec.module_ref is not None else None
            if rec.loaded <= 0 or module is None or rec.files is None:
                continue
            self._define(rec)
            self._emit(self._load_event(rec, rec.loaded))
            self._emit({"type": "release", "model": rec.id})

    def _load_event(self, rec, loaded):
        if rec.mode == "dynamic":
            return {"type": "load", "model": rec.id, "mode": "dynamic"}
        total = self.model_bytes(rec)
        if rec.mode == "partial" or (total and loaded < total):
            return {"type": "load", "model": rec.id, "mode": "partial", "device_bytes": max(1, int(loaded))}
        return {"type": "load", "model": rec.id, "mode": "full"}

    # ---- files (attribution.py decides; the recorder holds the lock) -----
    def loader_begin(self):
        with self.lock:
            self.files.loader_begin()

    def loader_end(self):
        with self.lock:
            return self.files.loader_end()

    def file_begin(self):
        """load_torch_file starts: (t0, whether an outer load already times it)."""
        with self.lock:
            return (self.clock(), self.loading_depth > 0)

    def file_opened(self, info, sd=None, ctx=None):
        """A file was read. In a model loader its time is loading; outside
        one it is the node's compute unless a model or patch is made of it."""
        with self.lock:
            if ctx is not None and not ctx[1]:
                elapsed = max(0, self.clock() - ctx[0])
                if self.files.loaders:
                    if self.node is not None:
                        self.node.load_ns += elapsed
                else:
                    info.ns = elapsed
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
            rec.patcher_ref = weakref.ref(patcher)
            # Dynamic VRAM stages the weights and makes them resident as they
            # are used (loaded_size() is near 0 now); model_lowvram is never set.
            rec.mode = ("dynamic" if is_dynamic(patcher)
                        else "partial" if getattr(patcher.model, "model_lowvram", False) else "full")
            self._define(rec)
            self._emit(self._load_event(rec, loaded))
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

    def freed_so_far(self, patcher):
        with self.lock:
            rec = self.rec_for(patcher, create=False)
            return rec.freed_total if rec is not None else 0

    def unloaded(self, patcher, freed, remaining, default_reason, always=False):
        """Bytes left the device. Dropped for a model the open trace file
        never defined (it was loaded in an earlier file, or never seen)."""
        with self.lock:
            rec = self.rec_for(patcher, create=False)
            if rec is None:
                return
            # A model cannot give back more than it holds (ComfyUI counts
            # buffers the state dict leaves out: a few KiB more, seen on 0.8.0).
            total = self.model_bytes(rec)
            if total > 0:
                freed, remaining = min(int(freed), total), min(int(remaining), total)
            rec.loaded = int(remaining)
            rec.freed_total += max(0, int(freed))
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

    def sample_resident(self):
        """At a node's edges: a dynamic model whose resident size shrank with
        no unload call was evicted on demand inside comfy-aimdo's allocator
        (an unload event, reason on_demand); one that grew made its weights
        resident as they were used."""
        with self.lock:
            if not self.writer.is_open:
                return
            for rec in list(self.models.values()):
                if rec.mode != "dynamic" or rec.patcher_ref is None:
                    continue
                patcher = rec.patcher_ref()
                if patcher is None:
                    continue
                now = int(patcher.loaded_size())
                if now < rec.loaded and rec.defined_in == self.writer.seq:
                    freed = rec.loaded - now
                    rec.freed_total += freed
                    self._emit({"type": "unload", "model": rec.id, "freed_bytes": freed, "remaining_bytes": now,
                                "reason": "on_demand"})
                rec.loaded = now

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
            self.outcome = None
            self.prompt_node_ns = 0
            self._emit({"type": "prompt_begin", "prompt": self.prompt_count})
            self.writer.flush()   # a run killed in this prompt still leaves a readable file
            return True

    def prompt_outcome(self, outcome):
        """ComfyUI reported execution_error or execution_interrupted."""
        with self.lock:
            if self.prompt is not None and self.outcome is None:
                self.outcome = outcome

    def prompt_end(self):
        with self.lock:
            if self.prompt is None:
                return
            if self.node is not None:
                self.node_end()
            number, t0 = self.prompt
            wall = int(self.clock() - t0)
            # The executor's own time between nodes (graph building, cache
            # lookups; most of it in a server's first prompt) is part of the
            # prompt's time too: a compute of no model, so a replay has it.
            gap = wall - self.prompt_node_ns
            if gap > 0:
                self._emit({"type": "compute", "models": [], "steps": 1, "step_ns": int(gap), "activation_bytes": 0})
            self.prompt = None
            self._drain_deaths()
            end = {"type": "prompt_end", "prompt": number, "measured_wall_ns": wall}
            if self.outcome is not None:
                end["status"] = self.outcome
            self.outcome = None
            self._emit(end)
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
            self.prompt_node_ns += duration   # in the trace as this node's compute (the cached ones' time is the gap's)
            models, seen = [], set()
            for rec in node.handles:
                if rec.id not in seen:
                    seen.add(rec.id)
                    models.append(rec.id)
            # Loose files a model or patch was made of were loading; others compute.
            used_file_ns = sum(getattr(i, "ns", 0) for i in node.loose_files if getattr(i, "used", False))
            compute_ns = max(0, duration - node.load_ns - used_file_ns)
            steps = max(1, node.steps) if models else 1
            if models or compute_ns > 0:
                # The node's time holds the streaming of whatever was offloaded.
                self._emit({"type": "compute", "models": models, "steps": steps,
                            "step_ns": int(compute_ns // steps), "activation_bytes": 0,
                            "step_includes_streaming": True})
            for rec in node.handles:
                self._emit({"type": "release", "model": rec.id})
            self._emit({"type": "node", "prompt": self.prompt[0], "node": node.node,
                        "class": node.cls, "duration_ns": int(duration), "cached": False})
            self._drain_deaths()   # those of its models that died while it ran

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

