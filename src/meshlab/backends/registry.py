"""Backends by name: the one place that knows which backends exist and their options."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshlab.backends.embedded.options import EmbeddedOptions

if TYPE_CHECKING:
    from meshlab.backends.base import Backend
    from meshlab.backends.kind import KindOptions

__all__ = ["EmbeddedOptions", "available_backends", "get_backend"]


def available_backends() -> tuple[str, ...]:
    return ("embedded", "kind")


def get_backend(name: str, options: EmbeddedOptions | KindOptions | None = None) -> Backend:
    """Create a backend by name, with its own options (None: its defaults)."""
    if name == "embedded":
        from meshlab.backends.embedded.backend import EmbeddedBackend

        if options is not None and not isinstance(options, EmbeddedOptions):
            raise TypeError(f"the embedded backend takes EmbeddedOptions, not {options!r}")
        return EmbeddedBackend(options)
    if name == "kind":
        from meshlab.backends.kind import KindBackend, KindOptions

        if options is not None and not isinstance(options, KindOptions):
            raise TypeError(f"the kind backend takes KindOptions, not {options!r}")
        return KindBackend(options)
    from meshlab.errors import BackendUnavailable

    raise BackendUnavailable(
        f"unknown backend {name!r}; available: {', '.join(available_backends())}"
    )
