"""The fleet feed: finished traces wait in a spool folder until `residency
serve` has acknowledged them (POST /v1/traces answered 200 or 201).

- 200/201: the trace is stored (201) or was already (200; the agent dedups by
  content hash, so a resend is harmless): removed from the spool.
- 429, 5xx, no answer: kept; retried with backoff.
- 401/403 (token) and 404/408 (wrong URL, timeout) say nothing about the
  trace: kept, retried, one warning.
- any other 4xx: moved to spool/rejected/ with NAME.reason.
"""
import logging
import os
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request

from .tracefile import NAME_RE

LOG = logging.getLogger("residency.capture")
RETRYABLE_4XX = (401, 403, 404, 408, 429)


class Spool:
    def __init__(self, directory):
        self.dir = directory
        self.rejected_dir = os.path.join(directory, "rejected")

    def add(self, path):
        """Copy a finished trace in (atomically: tmp + rename)."""
        os.makedirs(self.dir, exist_ok=True)
        dest = os.path.join(self.dir, os.path.basename(path))
        tmp = dest + ".tmp"
        shutil.copyfile(path, tmp)
        os.replace(tmp, dest)
        return dest

    def pending(self):
        try:
            names = sorted(n for n in os.listdir(self.dir) if n.endswith(".jsonl"))
        except OSError:
            return []
        return [os.path.join(self.dir, n) for n in names]

    def done(self, path):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass

    def reject(self, path, reason):
        os.makedirs(self.rejected_dir, exist_ok=True)
        base = os.path.basename(path)
        with open(os.path.join(self.rejected_dir, base + ".reason"), "w", encoding="utf-8") as f:
            f.write(reason.rstrip() + "\n")
        os.replace(path, os.path.join(self.rejected_dir, base))


def trace_name(path):
    name = os.path.basename(path)
    if name.endswith(".jsonl"):
        name = name[: -len(".jsonl")]
    name = "".join(c if (c.isalnum() and c.isascii()) or c in "._-" else "_" for c in name)[:64]
    if not name or name[0] in ".-":
        name = "t" + name[:63]
    assert NAME_RE.match(name)
    return name


def post_trace(url, path, token, timeout):
    """(status, body text); status 0 and the error text when nothing answered."""
    with open(path, "rb") as f:
        body = f.read()
    target = url + "/v1/traces?name=" + urllib.parse.quote(trace_name(path), safe="")
    req = urllib.request.Request(target, data=body, method="POST")
    req.add_header("Content-Type", "application/x-ndjson")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        try:
            text = e.read().decode("utf-8", "replace")
        except Exception:
            text = ""
        return e.code, text
    except (urllib.error.URLError, OSError, ValueError) as e:
        return 0, str(getattr(e, "reason", e))


class Sender:
    """A daemon thread that empties the spool; wake() after adding a trace."""

    def __init__(self, spool, url, token_file=None, backoff_min=1.0, backoff_max=60.0, timeout=30.0, logger=LOG):
        self.spool = spool
        self.url = url.rstrip("/")
        self.token_file = token_file
        self.backoff_min, self.backoff_max = backoff_min, backoff_max
        self.timeout = timeout
        self.log = logger
        self.delivered = []       # names acknowledged (tests, logs)
        self._wake = threading.Event()
        self._stop = False
        self._send_lock = threading.Lock()
        self._warned = set()
        self._thread = None

    def _warn_once(self, key, msg, *args):
        if key not in self._warned:
            self._warned.add(key)
            self.log.warning(msg, *args)

    def token(self):
        if not self.token_file:
            return None
        try:
            with open(self.token_file, "r", encoding="utf-8") as f:
                return f.read().strip()
        except OSError as e:
            self._warn_once("token", "residency capture: cannot read RESIDENCY_AGENT_TOKEN_FILE %s: %s; traces stay spooled",
                            self.token_file, e)
            return False

    def send_pending(self):
        """One pass over the spool. True when it is empty (or only rejected)."""
        with self._send_lock:
            for path in self.spool.pending():
                token = self.token()
                if token is False:
                    return False
                status, text = post_trace(self.url, path, token, self.timeout)
                if status in (200, 201):
                    self.spool.done(path)
                    self.delivered.append(os.path.basename(path))
                    self._warned.discard("down")
                    continue
                if 400 <= status < 500 and status not in RETRYABLE_4XX:
                    self.spool.reject(path, "HTTP %d: %s" % (status, text.strip()))
                    self.log.warning("residency capture: the agent rejected %s (HTTP %d: %s); moved to %s",
                                     os.path.basename(path), status, text.strip()[:300], self.spool.rejected_dir)
                    continue
                if status == 0:
                    self._warn_once("down", "residency capture: agent %s unreachable (%s); traces wait in %s",
                                    self.url, text, self.spool.dir)
                else:
                    self._warn_once("status%d" % status, "residency capture: agent answered HTTP %d (%s); will retry",
                                    status, text.strip()[:300])
                return False
            return True

    def run(self):
        delay = self.backoff_min
        while not self._stop:
            try:
                ok = self.send_pending()
            except Exception as e:  # never let the thread die silently
                self._warn_once("crash", "residency capture: sender error: %s", e)
                ok = False
            if ok:
                delay = self.backoff_min
                self._wake.wait()
            else:
                self._wake.wait(delay)
                delay = min(self.backoff_max, delay * 2)
            self._wake.clear()

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self.run, name="residency-capture-sender", daemon=True)
            self._thread.start()

    def wake(self):
        self._wake.set()

    def stop(self):
        self._stop = True
        self._wake.set()
