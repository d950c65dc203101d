"""Settings from the environment; the machine record's flags."""
import types
import unittest

from comfyui import machine, settings
from comfyui.redact import PathNamer


class SettingsTest(unittest.TestCase):
    def test_defaults(self):
        s = settings.from_env({}, default_dir="/srv/comfy/user/residency-capture")
        self.assertEqual((s.enabled, s.capture_dir, s.agent_url, s.token_file, s.redact, s.rotate),
                         (True, "/srv/comfy/user/residency-capture", None, None, False, 50))
        self.assertEqual(s.spool_dir, "/srv/comfy/user/residency-capture/spool")

    def test_env(self):
        s = settings.from_env({"RESIDENCY_CAPTURE": "0", "RESIDENCY_CAPTURE_DIR": "/d",
                               "RESIDENCY_AGENT_URL": "http://127.0.0.1:9464/", "RESIDENCY_AGENT_TOKEN_FILE": "/t",
                               "RESIDENCY_CAPTURE_REDACT": "1", "RESIDENCY_CAPTURE_ROTATE": "7"})
        self.assertEqual((s.enabled, s.capture_dir, s.agent_url, s.token_file, s.redact, s.rotate),
                         (False, "/d", "http://127.0.0.1:9464", "/t", True, 7))
        self.assertEqual(settings.from_env({"RESIDENCY_CAPTURE_ROTATE": "x"}).rotate, 50)
        self.assertEqual(settings.from_env({"RESIDENCY_CAPTURE_ROTATE": "0"}).rotate, 1)


class MachineTest(unittest.TestCase):
    def test_memory_flags(self):
        argv = ["main.py", "--listen", "0.0.0.0", "--lowvram", "--reserve-vram", "1.5", "--cache-lru", "10",
                "--cache-ram", "8", "--async-offload", "--disable-mmap", "--port", "8188", "--cache-ram=4",
                "--disable-smart-memory", "--async-offload", "3", "--fast", "--novram"]
        self.assertEqual(machine.memory_flags(argv),
                         ["--lowvram", "--reserve-vram", "1.5", "--cache-lru", "10", "--cache-ram", "8",
                          "--async-offload", "--disable-mmap", "--cache-ram", "4", "--disable-smart-memory",
                          "--async-offload", "3", "--novram"])

    def fake_mm(self, dev_type):
        return types.SimpleNamespace(get_torch_device=lambda: types.SimpleNamespace(type=dev_type),
                                     get_torch_device_name=lambda d: "%s:0 Fake" % dev_type,
                                     get_total_memory=lambda d: 24 * 2 ** 30)

    def test_collect(self):
        torch = types.SimpleNamespace(__version__="2.9.0", cuda=types.SimpleNamespace(
            get_device_properties=lambda d: types.SimpleNamespace(is_integrated=False)))
        m = machine.collect(self.fake_mm("cuda"), torch, PathNamer(True), ["main.py", "--highvram"])
        self.assertEqual(list(m), ["device", "vram", "ram", "unified", "cpu_cores", "torch", "server", "flags", "host"])
        self.assertEqual((m["device"], m["vram"], m["unified"], m["torch"], m["flags"]),
                         ("cuda:0 Fake", 24 * 2 ** 30, False, "2.9.0", ["--highvram"]))
        self.assertEqual(len(m["host"]), 16)
        self.assertTrue(m["server"].startswith("ComfyUI"))
        cpu = machine.collect(self.fake_mm("cpu"), torch, PathNamer(False), ["main.py", "--cpu"])
        self.assertTrue(cpu["unified"])
        self.assertNotIn("vram", cpu)


if __name__ == "__main__":
    unittest.main()
