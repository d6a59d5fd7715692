"""A lab's mesh-wide PeerAuthentication on a shared cluster.

A policy in istio-system without a selector would change every namespace of the cluster
(other runs, other students). Every pod of a lab runs in the run's own namespace, so the
kind backend applies the mesh-wide mode there as that namespace's policy instead: the same
mode for the lab's pods (policy_applier.go: a namespace policy that sets no mode inherits the
mesh's, one that sets a mode wins over it, so the lab's own namespace policy is kept and only
given the mesh's mode when it has none).
"""

from __future__ import annotations

from collections.abc import Sequence

from meshlab.backends.kind.kube import Obj
from meshlab.load.manifests import Resource
from meshlab.mesh.names import ROOT_NAMESPACE
from meshlab.mesh.peer_authentication import peer_policies


def is_mesh_wide(resource: Resource) -> bool:
    if resource.kind != "PeerAuthentication" or resource.namespace != ROOT_NAMESPACE:
        return False
    selector = resource.body.spec.selector
    return selector is None or not selector.matchLabels


def mesh_wide_mode(resources: Sequence[Resource]) -> str | None:
    """The mode of the oldest mesh-wide policy that sets one (None: none does)."""
    for policy in peer_policies(resources):
        mtls = policy.body.spec.mtls
        if is_mesh_wide(policy):
            return None if mtls is None or mtls.mode == "UNSET" else mtls.mode
    return None


def namespace_policy(mode: str, name: str) -> Obj:
    """The mesh-wide mode as the run namespace's own policy (namespace set on apply)."""
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": name},
        "spec": {"mtls": {"mode": mode}},
    }
