"""Check kinds: what a lab asserts about the mesh. Each kind is one module that registers
itself (listed by name in base.BUILTIN_KINDS, imported when a lab uses it); the lab loader and
runners only know this registry, so a new kind (sticky sessions, fault shares, latency) never
touches the existing ones."""

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
