"""Check kinds: what a lab asserts about the mesh. Each kind is one module that registers
itself; the lab loader and runners only know this registry, so a new kind (sticky sessions,
fault shares, latency) never touches the existing ones."""

from __future__ import annotations

from meshlab.checks.base import (
    Check,
    CheckContext,
    CheckedLab,
    CheckKind,
    CheckResult,
    load_checked_lab,
    parse_check,
    registry,
)

# Importing a kind's module registers it.
from meshlab.checks import split as _split  # noqa: F401  isort: skip
from meshlab.checks import status as _status  # noqa: F401  isort: skip
from meshlab.checks import ejection as _ejection  # noqa: F401  isort: skip
from meshlab.checks import overflow as _overflow  # noqa: F401  isort: skip
from meshlab.checks import sticky as _sticky  # noqa: F401  isort: skip
from meshlab.checks import reachability as _reachability  # noqa: F401  isort: skip
from meshlab.checks import latency as _latency  # noqa: F401  isort: skip

__all__ = [
    "Check",
    "CheckContext",
    "CheckKind",
    "CheckResult",
    "CheckedLab",
    "load_checked_lab",
    "parse_check",
    "registry",
]
