"""The kind backend: labs on a real cluster (kind, or any cluster with Istio) with the real
fleetman images. See backend.py for the lifecycle and probe.py for how outcomes are known."""

from __future__ import annotations

from meshlab.backends.kind.backend import KindBackend, KindOptions

__all__ = ["KindBackend", "KindOptions"]
