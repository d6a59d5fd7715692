"""The installed meshlab's version, read from the package metadata (pyproject.toml is the one
place it is written); a source tree that was never installed says so instead of guessing."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("meshlab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
