"""Trace files: one per server run, rotated every N prompts.

A trace is written as NAME.jsonl.partial while it grows and renamed to
NAME.jsonl when finished (rotation, server exit). A partial file left by a
process that died is cut after its last prompt_end and finished at the next
start (recover), so what was complete is kept.
"""
import json
import os
import re
import time

NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
PARTIAL = ".jsonl.partial"
_PARTIAL_RE = re.compile(r"^(?P<name>comfyui-[0-9T]+-p(?P<pid>[0-9]+)-[0-9]+)\.jsonl\.partial$")


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)  # one, not one per line


def dumps(obj):
    return _ENCODER.encode(obj)


def run_stamp(now=None):
    return time.strftime("%Y%m%dT%H%M%S", time.localtime(now))


class TraceWriter:
    """header_fn(name, seq) -> the header object; on_finished(path) is called
    with each finished trace file."""

    def __init__(self, directory, rotate, header_fn, on_finished=None, stamp=None, pid=None):
        self.directory = directory
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
        return "comfyui-%s-p%d-%03d" % (self.stamp, self.pid, seq)

    def ensure_open(self):
        if self._f is None:
            self.seq += 1
            os.makedirs(self.directory, exist_ok=True)
            name = self.name_for(self.seq)
            self._path = os.path.join(self.directory, name + PARTIAL)
            self._f = open(self._path, "w", encoding="utf-8", buffering=1 << 16)
            self._f.write(dumps(self.header_fn(name, self.seq)) + "\n")
            self.prompts = 0
            self.events = 0
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


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def recover(directory, on_finished=None, own_pid=None):
    """Finish the partial traces of dead processes: keep every line up to the
    last prompt_end; one without any finished prompt becomes .abandoned."""
    own_pid = os.getpid() if own_pid is None else own_pid
    out = []
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return out
    for fn in names:
        m = _PARTIAL_RE.match(fn)
        if not m:
            continue
        pid = int(m.group("pid"))
        if pid == own_pid or _pid_alive(pid):
            continue
        path = os.path.join(directory, fn)
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
            os.replace(path, path[: -len(PARTIAL)] + ".jsonl.abandoned")
            continue
        final = path[: -len(PARTIAL)] + ".jsonl"
        tmp = final + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(lines[: last + 1]) + "\n")
        os.replace(tmp, final)
        os.remove(path)
        out.append(final)
        if on_finished is not None:
            on_finished(final)
    return out
