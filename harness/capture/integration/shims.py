"""Shims that let ComfyUI 3cd7b32 import and run on Debian 12's torch 1.13 (CPU).

Test-only. Nothing here edits a ComfyUI file; everything is set up before
`import comfy...` (install()) or right after it (after_import()).
Each shim's docstring says why it exists; docs/CAPTURE.md ("The integration
test") describes the run they serve.
"""
import json
import os
import struct
import sys
import types

_DTYPES = {}  # safetensors dtype name <-> torch dtype, filled in install()


def _install_safetensors(torch):
    """A small pure-Python stand-in for the `safetensors` package: the calls
    ComfyUI makes (safe_open with keys/get_tensor/metadata, torch.load_file,
    torch.save_file)."""
    names = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
             "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32,
             "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}
    _DTYPES.update(names)
    back = {v: k for k, v in names.items()}

    class safe_open:
        def __init__(self, path, framework="pt", device="cpu"):
            self.path, self.device = path, device
            with open(path, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                if n > 100 * 1024 * 1024:
                    raise Exception("HeaderTooLarge")
                self.header = json.loads(f.read(n))
                self.base = 8 + n
            self.meta = self.header.pop("__metadata__", None)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def keys(self):
            return list(self.header.keys())

        def metadata(self):
            return self.meta

        def get_tensor(self, key):
            info = self.header[key]
            start, end = info["data_offsets"]
            with open(self.path, "rb") as f:
                f.seek(self.base + start)
                raw = bytearray(f.read(end - start))
            dtype = names[info["dtype"]]
            if len(raw) == 0:
                return torch.empty(info["shape"], dtype=dtype)
            t = torch.frombuffer(raw, dtype=dtype).reshape(info["shape"])
            return t.to(self.device) if self.device not in ("cpu", None) else t

    def save_file(sd, path, metadata=None):
        header, blobs, offset = {}, [], 0
        if metadata:
            header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
        for k in sorted(sd):
            t = sd[k].detach().contiguous().cpu()
            b = t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
            header[k] = {"dtype": back[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
            blobs.append(b)
            offset += len(b)
        h = json.dumps(header, separators=(",", ":")).encode()
        h += b" " * ((8 - len(h) % 8) % 8)
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(h)))
            f.write(h)
            for b in blobs:
                f.write(b)

    def load_file(path, device="cpu"):
        with safe_open(path, framework="pt", device=device) as f:
            return {k: f.get_tensor(k) for k in f.keys()}

    st = types.ModuleType("safetensors")
    st.safe_open = safe_open
    st_torch = types.ModuleType("safetensors.torch")
    st_torch.save_file, st_torch.load_file = save_file, load_file
    st_torch.safe_open = safe_open
    st.torch = st_torch
    sys.modules["safetensors"] = st
    sys.modules["safetensors.torch"] = st_torch


def _stub_module(name, **attrs):
    m = types.ModuleType(name)
    m.__path__ = []  # a package, so submodule imports resolve to stubs too

    def __getattr__(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        cls = type(attr, (), {"__init__": lambda self, *a, **k: None,
                               "from_pretrained": classmethod(lambda cls, *a, **k: cls())})
        setattr(m, attr, cls)
        return cls

    m.__getattr__ = __getattr__
    for k, v in attrs.items():
        setattr(m, k, v)
    sys.modules[name] = m
    return m


class _StubFinder:
    """Any `import transformers.x.y` / `tokenizers.x` / `torchsde.x` gets a stub."""
    prefixes = ("transformers", "tokenizers", "torchsde", "scipy")

    def find_spec(self, name, path, target=None):
        import importlib.machinery
        if name.split(".")[0] in self.prefixes and name not in sys.modules:
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec):
        return _stub_module(spec.name)

    def exec_module(self, module):
        pass


def _install_tqdm():
    """`tqdm` is only used for progress bars; an iterator pass-through will do."""
    class tqdm:
        def __init__(self, iterable=None, *a, **k):
            self.iterable = iterable
            self.n = 0

        def __iter__(self):
            return iter(self.iterable if self.iterable is not None else [])

        def update(self, n=1):
            self.n += n

        def close(self):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    m = _stub_module("tqdm", tqdm=tqdm, trange=lambda *a, **k: tqdm(range(*a)))
    auto = _stub_module("tqdm.auto", tqdm=tqdm, trange=m.trange)
    m.auto = auto


def install(comfyui_dir, einops_dir=None):
    """Call before importing anything from ComfyUI."""
    import torch
    if not hasattr(torch, "float8_e4m3fn"):
        torch.float8_e4m3fn = types.SimpleNamespace(itemsize=1, name="float8_e4m3fn")
        torch.float8_e5m2 = types.SimpleNamespace(itemsize=1, name="float8_e5m2")
    if not hasattr(torch, "compiler"):
        torch.compiler = types.SimpleNamespace(is_compiling=lambda: False, disable=lambda *a, **k: (lambda f: f))
    elif not hasattr(torch.compiler, "is_compiling"):
        torch.compiler.is_compiling = lambda: False
    if not hasattr(torch.Tensor, "nbytes"):
        torch.Tensor.nbytes = property(lambda self: self.nelement() * self.element_size())
    try:
        import safetensors  # noqa: F401
    except ImportError:
        _install_safetensors(torch)
    sys.meta_path.insert(0, _StubFinder())
    try:
        import tqdm  # noqa: F401
    except ImportError:
        _install_tqdm()
    if einops_dir and einops_dir not in sys.path:
        sys.path.insert(0, einops_dir)
    if comfyui_dir not in sys.path:
        sys.path.insert(0, comfyui_dir)


def after_import():
    """Call after `import comfy.model_patcher`: torch 1.13 dtypes have no .itemsize."""
    import torch
    import comfy.model_management
    import comfy.model_patcher as mp

    def low_vram_patch_estimate_vram(model, key):
        weight, set_func, convert_func = mp.get_key_weight(model, key)
        if weight is None:
            return 0
        model_dtype = getattr(model, "manual_cast_dtype", torch.float32)
        if model_dtype is None:
            model_dtype = weight.dtype
        return weight.numel() * comfy.model_management.dtype_size(model_dtype) * mp.LOWVRAM_PATCH_ESTIMATE_MATH_FACTOR

    if hasattr(mp, "low_vram_patch_estimate_vram"):
        mp.low_vram_patch_estimate_vram = low_vram_patch_estimate_vram
