"""The custom-node package itself: no nodes, inert outside ComfyUI."""
import sys
import unittest

import comfyui


class PackageTest(unittest.TestCase):
    def test_inert_outside_comfyui(self):
        self.assertNotIn("comfy.model_management", sys.modules)
        self.assertEqual(comfyui.NODE_CLASS_MAPPINGS, {})
        self.assertIsNone(comfyui.CAPTURE)

    def test_off_switch(self):
        self.assertIsNone(comfyui.install_into_comfyui(env={"RESIDENCY_CAPTURE": "0"}))


if __name__ == "__main__":
    unittest.main()
