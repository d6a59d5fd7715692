"""Backends by name: the one place that knows which backends exist and their options."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshlab.backends.embedded.options import EmbeddedOptions

if TYPE_CHECKING:
    from meshlab.backends.base import Backend
    from meshlab.backends.embedded.warm import WarmStart
    from meshlab.backends.kind import KindOptions

__all__ = ["EmbeddedOptions", "available_backends", "get_backend", "warm_start"]


def available_backends() -> tuple[str, ...]:
    return ("embedded", "kind")


def get_backend(
    name: str,
    options: EmbeddedOptions | KindOptions | None = None,
    warm: WarmStart | None = None,
) -> Backend:
    """Create a backend by name, with its own options (None: its defaults). `warm`: the
    embedded backend's processes started early (`warm_start`); the backend owns them now."""
    if name == "embedded":
        from meshlab.backends.embedded.backend import EmbeddedBackend

        if options is not None and not isinstance(options, EmbeddedOptions):
            raise TypeError(f"the embedded backend takes EmbeddedOptions, not {options!r}")
        return EmbeddedBackend(options, warm)
    if warm is not None:
        warm.close()
    if name == "kind":
        from meshlab.backends.kind import KindBackend, KindOptions

        if options is not None and not isinstance(options, KindOptions):
            raise TypeError(f"the kind backend takes KindOptions, not {options!r}")
        return KindBackend(options)
    from meshlab.errors import BackendUnavailable

    raise BackendUnavailable(
        f"unknown backend {name!r}; available: {', '.join(available_backends())}"
    )


def warm_start(name: str, options: EmbeddedOptions | KindOptions | None) -> WarmStart | None:
    """For a run that is about to read a lab: the embedded backend's Envoy, stand-in host
    and CA started now, on the core the reading leaves idle (backends/embedded/warm.py);
    None for other backends, or where they cannot start. Hand it to get_backend."""
    if name != "embedded" or (options is not None and not isinstance(options, EmbeddedOptions)):
        return None
    from meshlab.backends.embedded.warm import begin

    return begin(options or EmbeddedOptions())
