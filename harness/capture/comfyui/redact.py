"""RESIDENCY_CAPTURE_REDACT=1: file paths and the host name become hashes."""
import hashlib
import os


def hash16(text):
    return hashlib.sha256(str(text).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def redact_path(path):
    """sha256 of the path as ComfyUI opened it, first 16 hex digits, plus the
    file's extension: "/models/wan.safetensors" -> "3c1f...e2.safetensors"."""
    ext = os.path.splitext(os.path.basename(str(path)))[1]
    return hash16(path) + ext


class PathNamer:
    def __init__(self, redact):
        self.redact = redact

    def __call__(self, path, part=None):
        name = redact_path(path) if self.redact else str(path)
        return name + "#" + part if part else name

    def host(self, hostname):
        return hash16(hostname) if self.redact else hostname
