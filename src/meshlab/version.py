"""meshlab's version, as a literal: every run writes it into its report. Reading it from the
package metadata instead searched sys.path for meshlab's dist-info on every start (~3 ms) and
imported importlib.metadata with the CLI (pydantic still imports it, but only at its first
schema build). pyproject.toml's `[project] version` must say the same: a unit test compares
them, and the installed metadata."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
