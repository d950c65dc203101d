"""Which files a model, or a patch, came from.

- Files that comfy.utils.load_torch_file opens inside a model loader
  (load_checkpoint_guess_config / load_diffusion_model / load_clip) belong to
  what the loader returns.
- Other files are loose: remembered by their state dict's identity (so that
  load_lora_for_models(…, lora_sd, …) finds its file, even LoraLoader's
  cached dict on later prompts) and by the node that opened them.
- A patch with no file is a model of its own patch tensors' sizes.
- A model no loader named a file for (a custom node's load_torch_file and
  its own model class, a .pt file) takes the identity of a loose file whose
  tensors add up to its weights (within 2 %): the node's own first.
The caller (the recorder) holds the lock.
"""
import collections
import weakref


class FileInfo:
    """A model file: its path and [(tensor name, bytes)] in file order."""
    __slots__ = ("path", "tensors", "ns", "used")

    def __init__(self, path, tensors):
        self.path = path
        self.tensors = tensors
        self.ns = 0          # time reading it, when no outer load timed it
        self.used = False    # a model or a patch is made of it


def file_entry(namer, path, tensors, part=None):
    sizes = [int(s) for _, s in tensors if int(s) > 0]
    return {"path": namer(path, part), "bytes": sum(sizes), "tensors": sizes}


class Attribution:
    def __init__(self, namer, new_rec):
        """new_rec(base id) -> a new ModelRec named after it."""
        self.namer = namer
        self.new_rec = new_rec
        self.loaders = []                             # loader calls in progress: [FileInfo] each
        self.loose_by_sd = collections.OrderedDict()  # id(state dict) -> (weakref to a tensor, [FileInfo])
        self.lora_files = []                          # load_lora_for_models calls in progress: [FileInfo] or None
        self.patch_models = {}                        # tuple of paths -> ModelRec

    def loader_begin(self):
        self.loaders.append([])

    def loader_end(self):
        return self.loaders.pop() if self.loaders else []

    def file_opened(self, info, sd, node_files):
        if self.loaders:
            self.loaders[-1].append(info)
            return
        if node_files is not None:
            node_files.append(info)
        if isinstance(sd, dict) and sd:
            try:
                ref = weakref.ref(next(iter(sd.values())))
            except TypeError:
                ref = None
            self.loose_by_sd[id(sd)] = (ref, [info])
            while len(self.loose_by_sd) > 32:
                self.loose_by_sd.popitem(last=False)

    def entries(self, infos, part=None, keep=None):
        """The trace's file entries; with `keep`, only tensors whose names pass."""
        files = []
        for info in infos:
            tensors = info.tensors if keep is None else [t for t in info.tensors if keep(t[0])]
            entry = file_entry(self.namer, info.path, tensors, part)
            if entry["bytes"] > 0:
                files.append(entry)
        return files

    def lora_begin(self, sd):
        infos = None
        hit = self.loose_by_sd.get(id(sd)) if isinstance(sd, dict) else None
        if hit is not None:
            ref, files = hit
            try:
                if ref is not None and next(iter(sd.values())) is ref():
                    infos = files
            except Exception:
                infos = None
        self.lora_files.append(infos)

    def lora_end(self):
        if self.lora_files:
            self.lora_files.pop()

    def adopt(self, total, node_files):
        """The file entries of a loose file whose tensors add up to `total`
        bytes (2 %), marked used; None when none does."""
        candidates = list(reversed(node_files or []))
        for _, infos in reversed(list(self.loose_by_sd.values())):
            candidates += [i for i in infos if i not in candidates]
        for info in candidates:
            size = sum(int(s) for _, s in info.tensors)
            if size > 0 and abs(size - total) <= 0.02 * max(size, total):
                info.used = True
                return self.entries([info]) or None
        return None

    def _for_files(self, infos):
        for i in infos:
            i.used = True
        key = tuple(i.path for i in infos)
        rec = self.patch_models.get(key)
        if rec is None:
            rec = self.new_rec("LoRA")
            rec.files = self.entries(infos) or None
            self.patch_models[key] = rec
        return rec

    def patch_model(self, patches, node):
        """The patch model for an add_patches call made now (in `node`)."""
        if self.lora_files and self.lora_files[-1]:
            return self._for_files(self.lora_files[-1])
        if node is not None:
            if node.patch_rec is None and node.loose_files:
                node.patch_rec = self._for_files(node.loose_files)
            if node.patch_rec is not None:
                return node.patch_rec
        rec = self.new_rec("patch")
        sizes = []
        if isinstance(patches, dict):
            for value in patches.values():
                tensor_sizes(value, sizes, 3)
        sizes = [s for s in sizes if s > 0] or [1]
        rec.files = [{"path": "memory:" + rec.id, "bytes": sum(sizes), "tensors": sizes}]
        return rec


def tensor_sizes(value, out, depth):
    """Sizes of the tensors in a patch value: tensors, tuples/lists of them,
    adapters holding them in .weights."""
    if depth < 0:
        return
    if hasattr(value, "nelement") and hasattr(value, "element_size"):
        try:
            out.append(int(value.nelement()) * int(value.element_size()))
        except Exception:
            pass
        return
    if isinstance(value, (tuple, list)):
        for v in value:
            tensor_sizes(v, out, depth - 1)
        return
    weights = getattr(value, "weights", None)
    if isinstance(weights, (tuple, list)):
        tensor_sizes(weights, out, depth - 1)
