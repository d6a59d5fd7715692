"""Backends: where the traffic flows. Each one applies a lab's objects and hands back a
client that says, for every request, which pod served it (or how it failed)."""

from __future__ import annotations

from meshlab.backends.base import Backend, Deployed, Outcome, ProbeRequest

__all__ = ["Backend", "Deployed", "Outcome", "ProbeRequest", "available_backends", "get_backend"]


def available_backends() -> tuple[str, ...]:
    return ("embedded",)


def get_backend(name: str, **options: object) -> Backend:
    """Create a backend by name; options are backend-specific (e.g. `envoy` for embedded)."""
    if name == "embedded":
        from meshlab.backends.embedded import EmbeddedBackend

        return EmbeddedBackend(envoy=options.get("envoy"))  # type: ignore[arg-type]
    from meshlab.errors import BackendUnavailable

    raise BackendUnavailable(
        f"unknown backend {name!r}; available: {', '.join(available_backends())}"
    )
