"""Capture never hurts the server: wrappers that pass arguments, results and
exceptions through unchanged, and a guard that turns any error inside capture
into one logged warning and capture switched off."""
import functools
import logging

LOG = logging.getLogger("residency.capture")


class Guard:
    def __init__(self, logger=LOG):
        self.enabled = True
        self.failure = None
        self._log = logger

    def fail(self, where, exc):
        if self.failure is None:
            self.failure = "%s: %s: %s" % (where, type(exc).__name__, exc)
            self.enabled = False
            try:
                self._log.warning("residency capture: disabled after an error in %s", self.failure)
            except Exception:
                pass
        self.enabled = False

    def call(self, where, fn, *args):
        if not self.enabled:
            return None
        try:
            return fn(*args)
        except Exception as exc:  # never into ComfyUI
            self.fail(where, exc)
            return None


def wrap_sync(guard, orig, where, before=None, after=None, on_error=None):
    """before(args, kwargs) -> ctx; after(ctx, args, kwargs, result);
    on_error(ctx, args, kwargs, exc). The wrapped call sees exactly its
    arguments, and its caller exactly its result or exception."""

    @functools.wraps(orig)
    def wrapper(*args, **kwargs):
        if not guard.enabled:
            return orig(*args, **kwargs)
        ctx = guard.call(where, before, args, kwargs) if before is not None else None
        try:
            result = orig(*args, **kwargs)
        except BaseException as exc:
            if on_error is not None and guard.enabled:
                guard.call(where, on_error, ctx, args, kwargs, exc)
            raise
        if after is not None and guard.enabled:
            guard.call(where, after, ctx, args, kwargs, result)
        return result

    wrapper.__residency_original__ = orig
    return wrapper


def wrap_async(guard, orig, where, before=None, after=None, on_error=None):
    """The same for a coroutine function."""

    @functools.wraps(orig)
    async def wrapper(*args, **kwargs):
        if not guard.enabled:
            return await orig(*args, **kwargs)
        ctx = guard.call(where, before, args, kwargs) if before is not None else None
        try:
            result = await orig(*args, **kwargs)
        except BaseException as exc:
            if on_error is not None and guard.enabled:
                guard.call(where, on_error, ctx, args, kwargs, exc)
            raise
        if after is not None and guard.enabled:
            guard.call(where, after, ctx, args, kwargs, result)
        return result

    wrapper.__residency_original__ = orig
    return wrapper


class Patches:
    """Attribute replacements, each applied once, all undoable (tests)."""

    def __init__(self):
        self.applied = []

    def replace(self, owner, name, make):
        orig = getattr(owner, name, None)
        if orig is None or getattr(orig, "__residency_original__", None) is not None:
            return False
        setattr(owner, name, make(orig))
        self.applied.append((owner, name, orig))
        return True

    def undo(self):
        for owner, name, orig in reversed(self.applied):
            setattr(owner, name, orig)
        self.applied.clear()


def arg(args, kwargs, index, name, default=None):
    if name in kwargs:
        return kwargs[name]
    if len(args) > index:
        return args[index]
    return default
