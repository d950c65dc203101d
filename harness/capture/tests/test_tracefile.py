"""Trace files: well-formed lines, rotation every N prompts (each file
self-contained), recovery of a dead run's partial file."""
import os
import subprocess
import sys
import unittest

from comfyui import tracefile
from tests import fakes
from tests.helpers import CaptureCase, read_trace, strip, well_formed

MB = 1024 * 1024


class RotationTest(CaptureCase):
    rotate = 2

    def run_prompts(self, n):
        m = self.m
        base = m.sd.load_diffusion_model(self.model_file("wan.safetensors", [MB, MB]))
        lora = self.model_file("l.safetensors", [4096], names=["lora.layer0.weight"])
        patched = m.sd.load_lora_for_models(base, None, m.utils.load_torch_file(lora), 1.0, 0)[0]
        ex = m.execution.PromptExecutor()
        for i in range(n):
            prompt = {"1": {"class_type": "KSampler", "fn": lambda: m.mm.load_models_gpu([patched]) or (1,)}}
            ex.caches.outputs.store.clear()
            ex.execute(prompt, "p%d" % i, {}, ["1"])
        self.keep = (base, patched)

    def test_rotates_every_n_prompts_and_each_file_stands_alone(self):
        self.run_prompts(5)
        self.cap.recorder.finish()
        files = self.cap.writer.finished
        self.assertEqual(len(files), 3)
        self.assertEqual([f.endswith("-%03d.jsonl" % (i + 1)) for i, f in enumerate(files)], [True] * 3)
        prompts = []
        for path in files:
            header, events = well_formed(self, path)
            prompts.append([e["prompt"] for e in events if e["type"] == "prompt_end"])
            # the model and its LoRA patch are (re)declared in every file
            self.assertEqual([e["model"] for e in strip(events, "model")], ["WAN21", "LoRA"])
            self.assertEqual(len(strip(events, "patch")), 1)
            self.assertTrue(header["name"] in path)
            self.assertEqual(header["machine"]["host"], "box")
        self.assertEqual(prompts, [[1, 2], [3, 4], [5]])
        self.assertEqual(os.listdir(self.settings.capture_dir).count("spool"), 0)   # no agent: no spool

    def test_nothing_written_before_activity(self):
        self.assertIsNone(self.cap.recorder.finish())
        self.assertEqual(os.listdir(self.settings.capture_dir) if os.path.isdir(self.settings.capture_dir) else [], [])

    def test_exit_during_a_prompt_leaves_it_for_recovery(self):
        self.run_prompts(1)
        rec = self.cap.recorder
        rec.prompt_begin()
        rec.node_begin("1", "KSampler", False)
        self.assertIsNone(rec.finish())
        partial = [f for f in os.listdir(self.settings.capture_dir) if f.endswith(".partial")]
        self.assertEqual(len(partial), 1)


class RecoveryTest(CaptureCase):
    def test_dead_run_is_cut_after_its_last_prompt(self):
        d = self.settings.capture_dir
        os.makedirs(d)
        # Pids of processes that have exited. Not dead + 1: under a parallel
        # test run that pid was often some other live process (a flake).
        def dead_pid():
            return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                                      text=True).stdout.strip())
        dead, also_dead = dead_pid(), dead_pid()
        w = tracefile.TraceWriter(d, 50, lambda name, seq: {"format": "residency-trace", "version": 1,
                                                             "name": name, "source": "captured:comfyui"},
                                  pid=dead)
        w.write({"type": "prompt_begin", "prompt": 1})
        w.write({"type": "prompt_end", "prompt": 1})
        w.write({"type": "prompt_begin", "prompt": 2})
        w._f.write('{"type":"load","mo')       # torn last line
        w._f.close()
        w2 = tracefile.TraceWriter(d, 50, lambda n, s: {}, pid=also_dead, stamp="20000101T000000")
        w2.ensure_open()    # another dead run's partial file, with no prompt ended -> abandoned
        w2._f.close()
        got = []
        tracefile.recover(d, on_finished=got.append)
        self.assertEqual(len(got), 1)
        header, events = read_trace(got[0])
        self.assertEqual(events, [{"type": "prompt_begin", "prompt": 1}, {"type": "prompt_end", "prompt": 1}])
        left = sorted(os.listdir(d))
        self.assertTrue(any(f.endswith(".jsonl.abandoned") for f in left), left)
        self.assertFalse(any(f.endswith(".partial") for f in left), left)

    def test_a_live_run_is_left_alone(self):
        # It holds its file's lock, whatever its pid.
        d = self.settings.capture_dir
        os.makedirs(d)
        w = tracefile.TraceWriter(d, 50, lambda n, s: {}, pid=os.getppid())
        w.write({"type": "prompt_end", "prompt": 1})
        w.flush()
        self.assertEqual(tracefile.recover(d), [])
        w._f.close()   # the run dies: the next start recovers it
        self.assertEqual(len(tracefile.recover(d)), 1)

    def test_a_restart_with_the_same_pid_recovers_what_the_dead_run_left(self):
        # A container's server is PID 1 at every start: recovery by pid (skip
        # one's own) lost such a run's trace. The lock tells a dead run apart.
        d = self.settings.capture_dir
        os.makedirs(d)
        header = lambda n, s: {"format": "residency-trace", "version": 1, "name": n, "source": "captured:comfyui"}
        dead = tracefile.TraceWriter(d, 50, header, pid=1, stamp="20261205T000000")
        dead.write({"type": "prompt_begin", "prompt": 1})
        dead.write({"type": "prompt_end", "prompt": 1})
        dead.write({"type": "prompt_begin", "prompt": 2})
        dead.flush()
        dead._f.close()   # SIGKILL: no finish
        restarted = tracefile.TraceWriter(d, 50, header, pid=1, stamp="20261205T000000")
        self.assertNotEqual(restarted.name_for(1), dead.name_for(1))   # the run id differs
        with self.assertLogs("residency.capture", "WARNING") as logs:
            got = tracefile.recover(d)
        self.assertEqual(len(got), 1)
        self.assertEqual([e["type"] for e in read_trace(got[0])[1]], ["prompt_begin", "prompt_end"])
        self.assertIn("recovered", logs.output[0])
        self.assertIn("1 finished prompt kept", logs.output[0])

    def test_a_run_killed_in_its_first_prompt_leaves_a_readable_abandoned_file(self):
        self.cap.start()
        rec = self.cap.recorder
        rec.prompt_begin()
        rec.node_begin("1", "KSampler", False)
        rec.writer._f.close()   # SIGKILL: nothing more is written, nothing finished
        rec.writer._f = None
        with self.assertLogs("residency.capture", "WARNING") as logs:
            tracefile.recover(self.settings.capture_dir)
        abandoned = [f for f in os.listdir(self.settings.capture_dir) if f.endswith(".abandoned")]
        self.assertEqual(len(abandoned), 1)
        header, events = read_trace(os.path.join(self.settings.capture_dir, abandoned[0]))
        self.assertEqual(header["source"], "captured:comfyui")
        self.assertEqual(events[0]["type"], "prompt_begin")   # flushed when the prompt began
        self.assertIn("died before finishing a prompt", logs.output[0])


if __name__ == "__main__":
    unittest.main()
