"""Backends by name: the one place that knows which backends exist and their options."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshlab.backends.base import Backend

if TYPE_CHECKING:
    from meshlab.backends.kind import KindOptions

__all__ = [
    "available_backends",
    "backend_extras",
    "close_backend",
    "get_backend",
]


def available_backends() -> tuple[str, ...]:
    return ("embedded", "kind")


def get_backend(name: str, **options: object) -> Backend:
    """Create a backend by name; options are backend-specific (e.g. `envoy` for embedded)."""
    if name == "embedded":
        from meshlab.backends.embedded.backend import EmbeddedBackend

        return EmbeddedBackend(envoy=options.get("envoy"))  # type: ignore[arg-type]
    if name == "kind":
        from meshlab.backends.kind import KindBackend

        return KindBackend(_kind_options(options))
    from meshlab.errors import BackendUnavailable

    raise BackendUnavailable(
        f"unknown backend {name!r}; available: {', '.join(available_backends())}"
    )


def _kind_options(options: dict[str, object]) -> KindOptions:
    """`kubeconfig`, `keep_cluster`, `keep_namespace`, `istio_version` (None: the default)."""
    from pathlib import Path

    from meshlab.backends.kind import KindOptions

    kind = KindOptions()
    if options.get("kubeconfig"):
        kind.kubeconfig = Path(str(options["kubeconfig"])).expanduser()
    kind.keep_cluster = bool(options.get("keep_cluster", False))
    kind.keep_namespace = bool(options.get("keep_namespace", False))
    if options.get("istio_version"):
        kind.istio_version = str(options["istio_version"])
    return kind


def close_backend(backend: Backend) -> None:
    """End a backend's session: the kind backend deletes the cluster it created (unless
    kept); backends that hold nothing between labs have no `close`."""
    close = getattr(backend, "close", None)
    if callable(close):
        close()


def backend_extras(backend: Backend, passed: bool) -> dict[str, str]:
    """What a backend learnt during a run (cluster versions, requests sent; diagnostics when
    something failed), for the report's `backend_info`. Empty for most backends."""
    extras = getattr(backend, "report_extras", None)
    return dict(extras(passed)) if callable(extras) else {}
