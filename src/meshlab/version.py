"""meshlab's version, as a literal: every run writes it into its report, and reading the
package metadata instead (importlib.metadata, with zipfile, csv and email) cost a run ~15 ms
at start-up. pyproject.toml's `[project] version` must say the same (a unit test compares
them, and the installed metadata)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
