"""RESIDENCY_CAPTURE_REDACT=1 hashes file paths and the host name."""
import hashlib
import json
import unittest

from comfyui.redact import PathNamer, redact_path
from tests.helpers import CaptureCase, strip

MB = 1024 * 1024


class RedactTest(unittest.TestCase):
    def test_hash_and_extension(self):
        p = "/home/alice/models/wan2.2_t2v_14B.safetensors"
        want = hashlib.sha256(p.encode()).hexdigest()[:16] + ".safetensors"
        self.assertEqual(redact_path(p), want)
        self.assertEqual(PathNamer(True)(p, "unet"), want + "#unet")
        self.assertEqual(PathNamer(False)(p, "unet"), p + "#unet")
        self.assertEqual(redact_path("/x/noext"), hashlib.sha256(b"/x/noext").hexdigest()[:16])
        self.assertEqual(PathNamer(True).host("box"), hashlib.sha256(b"box").hexdigest()[:16])
        self.assertEqual(PathNamer(False).host("box"), "box")


class RedactedTraceTest(CaptureCase):
    redact = True

    def test_no_path_or_host_in_the_trace(self):
        path = self.model_file("secret_model_name.safetensors", [MB])
        lora = self.model_file("secret_lora.safetensors", [4096], names=["lora.layer0.weight"])
        p = self.m.sd.load_diffusion_model(path)
        self.m.mm.load_models_gpu([p])
        self.m.sd.load_lora_for_models(p, None, self.m.utils.load_torch_file(lora), 1.0, 0)
        header, events = self.finish()
        text = json.dumps(header) + json.dumps(events)
        self.assertNotIn("secret", text)
        self.assertNotIn(self.tmp, text)
        self.assertNotIn('"box"', text)
        paths = [f["path"] for e in strip(events, "model") for f in e["files"]]
        self.assertEqual(paths, [redact_path(path), redact_path(lora)])


if __name__ == "__main__":
    unittest.main()
