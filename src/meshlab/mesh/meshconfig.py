"""The mesh-wide settings a lab may change the way the course does: by editing the `mesh`
key of the ConfigMap `istio` in `istio-system` (Istio's MeshConfig, which istiod reads:
pkg/config/mesh/kubemesh/watcher.go MeshConfigKey "mesh"; pkg/config/mesh/mesh.go
ApplyMeshConfig decodes it over DefaultMeshConfig, field by field). meshlab reads
one setting from it: `outboundTrafficPolicy.mode` (ALLOW_ANY, the default, or REGISTRY_ONLY),
the catch-all of every sidecar without a Sidecar resource of its own saying otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import yaml

from meshlab.errors import Location
from meshlab.load.manifests import MESH_CONFIG, Resource
from meshlab.records import dataclass

OutboundMode = Literal["ALLOW_ANY", "REGISTRY_ONLY"]
# pkg/config/mesh/mesh.go DefaultMeshConfig: outboundTrafficPolicy ALLOW_ANY
DEFAULT_OUTBOUND_MODE: OutboundMode = "ALLOW_ANY"


@dataclass(frozen=True)
class MeshSettings:
    """The MeshConfig settings meshlab reads (the outbound traffic policy), the ConfigMap that set
    them, and, when its `mesh` could not be used, why, so a note can say so."""

    outbound_mode: OutboundMode = DEFAULT_OUTBOUND_MODE
    source: Resource | None = None  # the ConfigMap that set it
    problem: str | None = None  # why the ConfigMap's `mesh` was not used, for a note

    @property
    def location(self) -> Location | None:
        return self.source.locate("data", "mesh") if self.source is not None else None


def mesh_settings(resources: Sequence[Resource]) -> MeshSettings:
    """The last `istio-system/istio` ConfigMap wins, as the last apply does."""
    found = [r for r in resources if r.kind == "ConfigMap" and (r.namespace, r.name) == MESH_CONFIG]
    if not found:
        return MeshSettings()
    source = found[-1]
    data = source.body.data if isinstance(source.body.data, dict) else {}
    return _parse(source, data.get("mesh"))


def _parse(source: Resource, text: object) -> MeshSettings:
    if text is None:
        return MeshSettings(source=source)
    try:
        mesh: Any = yaml.safe_load(text) if isinstance(text, str) else None
    except yaml.YAMLError as exc:
        detail = getattr(exc, "problem", None) or "unreadable"
        return MeshSettings(source=source, problem=f"`mesh` is not valid YAML ({detail})")
    if not isinstance(mesh, dict):
        return MeshSettings(source=source, problem="`mesh` is not a YAML mapping")
    policy = mesh.get("outboundTrafficPolicy")
    if policy is None:
        return MeshSettings(source=source)
    # A written policy replaces the default one whole (pkg/util/protomarshal/protomarshal.go
    # ApplyYAML decodes with the legacy jsonpb, which sets a message field to a new message),
    # and REGISTRY_ONLY is the Mode enum's zero value (istio/api mesh/v1alpha1/config.proto):
    # `outboundTrafficPolicy: {}` or a null mode blocks, as a Sidecar's does (sidecar_scope.py).
    mode = (policy.get("mode") or "REGISTRY_ONLY") if isinstance(policy, dict) else None
    if mode not in ("ALLOW_ANY", "REGISTRY_ONLY"):
        # pkg/config/mesh/meshwatcher/collection.go NewCollection: a mesh config that does not
        # decode is logged and dropped; istiod keeps the default
        what = (
            " is not a mapping"
            if mode is None
            else f".mode {mode!r} is neither ALLOW_ANY nor REGISTRY_ONLY"
        )
        return MeshSettings(
            source=source,
            problem=f"outboundTrafficPolicy{what} (istiod ignores such a mesh config)",
        )
    return MeshSettings("ALLOW_ANY" if mode == "ALLOW_ANY" else "REGISTRY_ONLY", source)
