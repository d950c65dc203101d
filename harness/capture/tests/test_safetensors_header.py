"""Tensor sizes from the safetensors header only."""
import json
import os
import shutil
import struct
import tempfile
import unittest

from comfyui.hooks import file_info
from comfyui.safetensors_header import HeaderError, is_safetensors, read_tensor_sizes
from tests import fakes


class HeaderTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, header, data=b"", raw=None):
        path = os.path.join(self.tmp, "m.safetensors")
        h = raw if raw is not None else json.dumps(header).encode()
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h + data)
        return path

    def test_sizes_in_file_order(self):
        path = os.path.join(self.tmp, "a.safetensors")
        fakes.write_safetensors(path, [16, 4096, 8])
        self.assertEqual(read_tensor_sizes(path), [("t0", 16), ("t1", 4096), ("t2", 8)])
        # header order != data order: sorted by offset; zero-size tensors dropped
        path = self.write({"b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
                           "z": {"dtype": "F32", "shape": [0], "data_offsets": [8, 8]},
                           "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                           "__metadata__": {"k": "v"}})
        self.assertEqual(read_tensor_sizes(path), [("a", 8), ("b", 8)])

    def test_reads_the_header_only(self):
        # The data region is absent: reading it would fail or return nothing.
        path = os.path.join(self.tmp, "big.safetensors")
        fakes.write_safetensors(path, [1 << 30, 1 << 30], pad_data=False)
        self.assertEqual(os.path.getsize(path) < 4096, True)
        self.assertEqual(read_tensor_sizes(path), [("t0", 1 << 30), ("t1", 1 << 30)])

    def test_reads_exactly_8_plus_header_bytes(self):
        path = os.path.join(self.tmp, "c.safetensors")
        total = fakes.write_safetensors(path, [1 << 20] * 3)
        counted = []
        real_open = open

        class Counting:
            def __init__(self, f):
                self.f = f

            def read(self, n=-1):
                b = self.f.read(n)
                counted.append(len(b))
                return b

            def __enter__(self):
                return self

            def __exit__(self, *a):
                self.f.close()

        import comfyui.safetensors_header as sh
        sh.open = lambda p, mode="r": Counting(real_open(p, mode))
        try:
            read_tensor_sizes(path)
        finally:
            del sh.open
        with real_open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
        self.assertEqual(sum(counted), 8 + n)
        self.assertLess(sum(counted), total - 3 * (1 << 20) + 1)

    def test_malformed(self):
        with self.assertRaises(HeaderError):
            read_tensor_sizes(self.write(None, raw=b"not json"))
        with self.assertRaises(HeaderError):
            read_tensor_sizes(self.write({"a": {"data_offsets": [8, 0]}}))
        with self.assertRaises(HeaderError):
            read_tensor_sizes(self.write({"a": {"dtype": "F32"}}))
        path = os.path.join(self.tmp, "short.safetensors")
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", 1000) + b"{}")
        with self.assertRaises(HeaderError):
            read_tensor_sizes(path)
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", 1 << 40))
        with self.assertRaises(HeaderError):
            read_tensor_sizes(path)

    def test_file_info_falls_back_to_the_loaded_tensors(self):
        self.assertTrue(is_safetensors("X.SFT") and is_safetensors("a.safetensors") and not is_safetensors("a.ckpt"))
        sd = {"w": fakes.Tensor(64), "b": fakes.Tensor(8)}
        info = file_info(os.path.join(self.tmp, "model.ckpt"), sd)
        self.assertEqual(info.tensors, [("w", 64), ("b", 8)])
        broken = self.write(None, raw=b"garbage")
        self.assertEqual(file_info(broken, sd).tensors, [("w", 64), ("b", 8)])


if __name__ == "__main__":
    unittest.main()
