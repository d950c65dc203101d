"""One capture per server run: settings + guard + trace writer + recorder +
the spool and its sender."""
import atexit
import logging
import os

from . import tracefile
from .guard import Guard
from .recorder import Recorder
from .redact import PathNamer
from .spool import Sender, Spool

LOG = logging.getLogger("residency.capture")


class Capture:
    def __init__(self, settings, machine_fn=None, logger=LOG, sender_options=None):
        """machine_fn(namer) -> the header's machine record (or None)."""
        self.settings = settings
        self.log = logger
        self.guard = Guard(logger)
        self.namer = PathNamer(settings.redact)
        self.machine_fn = machine_fn
        self._machine = None
        self.spool = Spool(settings.spool_dir) if settings.agent_url else None
        self.sender = (Sender(self.spool, settings.agent_url, settings.token_file, logger=logger,
                              **(sender_options or {})) if self.spool else None)
        self.writer = tracefile.TraceWriter(settings.capture_dir, settings.rotate, self._header,
                                            on_finished=self._finished)
        self.recorder = Recorder(self.writer, self.namer)
        self.patches = None

    def _header(self, name, seq):
        if self._machine is None and self.machine_fn is not None:
            try:
                self._machine = self.machine_fn(self.namer)
            except Exception as e:  # the trace is still useful without it
                self.log.warning("residency capture: no machine record: %s", e)
                self._machine = {}
        h = {"format": "residency-trace", "version": 1, "name": name, "source": "captured:comfyui",
             "description": "captured from %s, trace %d of this server run (rotated every %d prompts)"
                            % ((self._machine or {}).get("server", "ComfyUI"), seq, self.settings.rotate)}
        if self._machine:
            h["machine"] = self._machine
        return h

    def _finished(self, path):
        self.log.info("residency capture: wrote %s", path)
        if self.spool is not None:
            self.spool.add(path)
            self.sender.wake()

    def start(self):
        """Finish what a dead run left, resend what waits in the spool."""
        os.makedirs(self.settings.capture_dir, exist_ok=True)
        tracefile.recover(self.settings.capture_dir, on_finished=self._finished, logger=self.log)
        if self.sender is not None:
            self.sender.start()
            self.sender.wake()
        atexit.register(self.shutdown)

    def shutdown(self):
        try:
            if self.guard.enabled:
                self.recorder.finish()
            if self.sender is not None:
                self.sender.stop()
                old = self.sender.timeout
                self.sender.timeout = 2.0
                try:
                    self.sender.send_pending()   # one short try; the rest waits for the next start
                finally:
                    self.sender.timeout = old
        except Exception as e:
            self.log.warning("residency capture: at exit: %s", e)
