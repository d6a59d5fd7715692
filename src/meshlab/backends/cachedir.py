"""Where meshlab keeps files between runs: one folder per user, shared by the backends
(kind's pinned tools under it, the embedded backend's mesh CA in `mesh-ca/`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

ENV_CACHE = "MESHLAB_CACHE_DIR"


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """$MESHLAB_CACHE_DIR, else the platform's user cache directory plus `meshlab`."""
    env = os.environ if env is None else env
    if env.get(ENV_CACHE):
        return Path(env[ENV_CACHE])
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "meshlab"
    if sys.platform == "win32":
        base = env.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        return Path(base) / "meshlab" / "Cache"
    return Path(env.get("XDG_CACHE_HOME") or home / ".cache") / "meshlab"
