"""What a lab carries that meshlab neither simulates nor analyses, listed once per kind.

A student applies Istio's install files with the app (`1-istio-init.yaml`: CRDs,
`2-istio-minikube.yaml`: istiod, gateways, RBAC, addons, `3-kiali-secret.yaml`). A real
cluster needs them; meshlab plays istiod itself, so they are accepted and named, not run:
"not simulated: CustomResourceDefinition ×16 — part of Istio's install".
"""

from __future__ import annotations

from collections.abc import Sequence

from meshlab.load.k8s import Passive
from meshlab.load.manifests import MESH_CONFIG, Resource
from meshlab.mesh.model import Note
from meshlab.records import dataclass


@dataclass(frozen=True)
class UnsimulatedKind:
    """The objects of one kind that no backend runs (most of them Istio's own install), grouped to
    be named once in the report rather than silently ignored."""

    kind: str
    objects: tuple[Resource, ...]

    @property
    def installs(self) -> int:
        """How many of them Istio's installer creates."""
        return sum(r.install for r in self.objects)

    def describe(self) -> str:
        """`CustomResourceDefinition ×16 — part of Istio's install`."""
        count, installs = len(self.objects), self.installs
        text = f"{self.kind} ×{count}"
        if installs == count:
            return f"{text} — part of Istio's install"
        if installs:
            return f"{text} — {installs} of them part of Istio's install"
        return text


def unsimulated_kinds(resources: Sequence[Resource]) -> list[UnsimulatedKind]:
    """The objects no backend runs, grouped by kind in order of first appearance: kinds
    meshlab does not model (Namespaces, ConfigMaps... included: they are passed on to a
    real cluster, but nothing reads them), and the workloads and Services of Istio's install."""
    groups: dict[str, list[Resource]] = {}
    for resource in resources:
        if resource.kind == "ConfigMap" and (resource.namespace, resource.name) == MESH_CONFIG:
            continue  # istiod's mesh config: read (mesh/meshconfig.py)
        if not resource.simulated or isinstance(resource.body, Passive):
            groups.setdefault(resource.kind, []).append(resource)
    return [UnsimulatedKind(kind, tuple(objects)) for kind, objects in groups.items()]


def unsimulated_notes(resources: Sequence[Resource]) -> list[Note]:
    """One note per kind for a run's report."""
    return [
        Note(f"not simulated: {group.describe()}", group.objects[0].location)
        for group in unsimulated_kinds(resources)
    ]
