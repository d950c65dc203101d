"""Trace files: one per server run, rotated every N prompts.

A trace is written as NAME.jsonl.partial while it grows and renamed to
NAME.jsonl when finished (rotation, server exit). While a run writes a
partial file it holds an exclusive lock on it (flock): a partial file nobody
holds belongs to a run that died, whatever its pid was (a restarted container
has PID 1 again), and is cut after its last prompt_end and finished at the
next start (recover), so what was complete is kept. The header and each
prompt_begin are flushed at once, so even a run killed in its first prompt
leaves a file that says what it was.
"""
import fcntl
import json
import logging
import os
import re
import secrets
import time

LOG = logging.getLogger("residency.capture")
NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
PARTIAL = ".jsonl.partial"
_PARTIAL_RE = re.compile(r"^comfyui-[A-Za-z0-9_-]+-[0-9]+\.jsonl\.partial$")


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)  # one, not one per line


def dumps(obj):
    return _ENCODER.encode(obj)


def run_stamp(now=None):
    return time.strftime("%Y%m%dT%H%M%S", time.localtime(now))


class TraceWriter:
    """header_fn(name, seq) -> the header object; on_finished(path) is called
    with each finished trace file."""

    def __init__(self, directory, rotate, header_fn, on_finished=None, stamp=None, pid=None, run_id=None,
                 on_open=None):
        """on_open(seq), when given, runs right after a file's header is written
        (the recorder carries resident models over into a rotated file)."""
        self.directory = directory
        self.on_open = on_open
        # The run's identity in its file names: the pid alone repeats (PID 1
        # in every container start); the random part does not.
        self.run_id = run_id or secrets.token_hex(3)
        self.rotate = max(1, int(rotate))
        self.header_fn = header_fn
        self.on_finished = on_finished
        self.stamp = stamp or run_stamp()
        self.pid = os.getpid() if pid is None else pid
        self.seq = 0          # files opened so far; the open one's number
        self.prompts = 0      # prompts finished in the open file
        self.events = 0       # event lines in the open file
        self.finished = []    # paths of finished files
        self._f = None
        self._path = None

    @property
    def is_open(self):
        return self._f is not None

    def name_for(self, seq):
        return "comfyui-%s-p%d-%s-%03d" % (self.stamp, self.pid, self.run_id, seq)

    def ensure_open(self):
        if self._f is None:
            self.seq += 1
            os.makedirs(self.directory, exist_ok=True)
            name = self.name_for(self.seq)
            self._path = os.path.join(self.directory, name + PARTIAL)
            self._f = open(self._path, "w", encoding="utf-8", buffering=1 << 16)
            try:
                fcntl.flock(self._f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                pass  # a filesystem without locks: recovery then leaves the file alone while it is fresh
            self._f.write(dumps(self.header_fn(name, self.seq)) + "\n")
            self._f.flush()
            self.prompts = 0
            self.events = 0
            if self.on_open is not None:
                self.on_open(self.seq)
        return self.seq

    def write(self, obj):
        self.ensure_open()
        self._f.write(dumps(obj) + "\n")
        self.events += 1

    def flush(self):
        if self._f is not None:
            self._f.flush()

    def prompt_done(self):
        """After a prompt_end: flush, and rotate every `rotate` prompts."""
        self.prompts += 1
        if self.prompts >= self.rotate:
            self.finish()
        else:
            self.flush()

    def finish(self):
        """Close the open file and publish it; returns its path or None."""
        if self._f is None:
            return None
        f, partial = self._f, self._path
        self._f = self._path = None
        f.close()
        final = partial[: -len(PARTIAL)] + ".jsonl"
        os.replace(partial, final)
        self.finished.append(final)
        if self.on_finished is not None:
            self.on_finished(final)
        return final

    def abandon(self):
        """Stop writing without publishing (a prompt was still running):
        the next start recovers the file up to its last finished prompt."""
        if self._f is not None:
            self._f.close()
            self._f = self._path = None


def _held(path):
    """True when a live run holds the file's lock (its writer)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def recover(directory, on_finished=None, logger=LOG):
    """Finish the partial traces of runs that died (no live run holds their
    lock): keep every line up to the last prompt_end; one without any
    finished prompt becomes .abandoned. Each is named in the log."""
    out = []
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return out
    for fn in names:
        if not _PARTIAL_RE.match(fn):
            continue
        path = os.path.join(directory, fn)
        if _held(path):
            continue
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
        last = -1
        for i, line in enumerate(lines):
            if '"type":"prompt_end"' in line:
                try:
                    if json.loads(line).get("type") == "prompt_end":
                        last = i
                except ValueError:
                    pass
        if last < 0:
            abandoned = path[: -len(PARTIAL)] + ".jsonl.abandoned"
            os.replace(path, abandoned)
            logger.warning("residency capture: %s was left by a run that died before finishing a prompt; kept as %s "
                           "(%d lines)", fn, os.path.basename(abandoned), len([l for l in lines if l.strip()]))
            continue
        final = path[: -len(PARTIAL)] + ".jsonl"
        tmp = final + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(lines[: last + 1]) + "\n")
        os.replace(tmp, final)
        os.remove(path)
        prompts = sum(1 for l in lines[: last + 1] if '"type":"prompt_end"' in l)
        logger.warning("residency capture: recovered %s from a run that died: %d finished prompt%s kept, %d lines "
                       "after them dropped", os.path.basename(final), prompts, "" if prompts == 1 else "s",
                       len([l for l in lines[last + 1:] if l.strip()]))
        out.append(final)
        if on_finished is not None:
            on_finished(final)
    return out
