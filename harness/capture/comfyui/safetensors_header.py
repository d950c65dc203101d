"""Tensor sizes of a model file, from its safetensors header only.

A safetensors file is an 8-byte little-endian header length, a JSON header
naming each tensor's byte range, then the data. Only the first two are read:
the weights are never read a second time.
"""
import json
import os
import struct

MAX_HEADER = 100 * 1024 * 1024  # ComfyUI's own cap (comfy.utils.safetensors_header)
SAFETENSORS_EXTENSIONS = (".safetensors", ".sft")


class HeaderError(ValueError):
    pass


def is_safetensors(path):
    return str(path).lower().endswith(SAFETENSORS_EXTENSIONS)


def read_tensor_sizes(path):
    """[(name, bytes)] in file order (by data offset); zero-size tensors dropped.

    Reads 8 + header-length bytes of the file, nothing more.
    """
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise HeaderError("%s: shorter than a safetensors header" % path)
        (n,) = struct.unpack("<Q", head)
        if n == 0 or n > MAX_HEADER:
            raise HeaderError("%s: header length %d out of range" % (path, n))
        raw = f.read(n)
    if len(raw) != n:
        raise HeaderError("%s: header truncated" % path)
    try:
        header = json.loads(raw)
    except ValueError as e:
        raise HeaderError("%s: header is not JSON: %s" % (path, e))
    if not isinstance(header, dict):
        raise HeaderError("%s: header is not a JSON object" % path)
    entries = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            start, end = info["data_offsets"]
            start, end = int(start), int(end)
        except (KeyError, TypeError, ValueError):
            raise HeaderError("%s: tensor %r has no valid data_offsets" % (path, name))
        if start < 0 or end < start:
            raise HeaderError("%s: tensor %r has invalid data_offsets" % (path, name))
        if end > start:
            entries.append((start, name, end - start))
    entries.sort()
    return [(name, size) for _, name, size in entries]


def tensor_sizes_from_state_dict(sd):
    """[(name, bytes)] for an already loaded state dict (.ckpt/.pt files):
    sizes from tensor metadata (numel x element size), no data touched."""
    out = []
    for name, t in sd.items():
        try:
            size = int(t.nelement()) * int(t.element_size())
        except Exception:
            continue
        if size > 0:
            out.append((name, size))
    return out


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
