"""Capture settings, all from environment variables (docs/CAPTURE.md)."""
import os
from dataclasses import dataclass
from typing import Optional

DEFAULT_ROTATE = 50


@dataclass
class Settings:
    enabled: bool = True
    capture_dir: str = "residency-capture"
    agent_url: Optional[str] = None
    token_file: Optional[str] = None
    redact: bool = False
    rotate: int = DEFAULT_ROTATE

    @property
    def spool_dir(self):
        return os.path.join(self.capture_dir, "spool")


def _flag(value, default):
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def from_env(env=None, default_dir=None):
    """default_dir: where traces go without RESIDENCY_CAPTURE_DIR (the caller
    passes ComfyUI's user directory when there is one)."""
    env = os.environ if env is None else env
    rotate = DEFAULT_ROTATE
    try:
        rotate = max(1, int(env.get("RESIDENCY_CAPTURE_ROTATE", DEFAULT_ROTATE)))
    except ValueError:
        pass
    url = (env.get("RESIDENCY_AGENT_URL") or "").strip().rstrip("/") or None
    return Settings(
        enabled=_flag(env.get("RESIDENCY_CAPTURE"), True),
        capture_dir=env.get("RESIDENCY_CAPTURE_DIR") or default_dir or os.path.abspath("residency-capture"),
        agent_url=url,
        token_file=env.get("RESIDENCY_AGENT_TOKEN_FILE") or None,
        redact=_flag(env.get("RESIDENCY_CAPTURE_REDACT"), False),
        rotate=rotate,
    )
