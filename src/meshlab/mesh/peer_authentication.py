"""Which traffic a meshed pod's sidecar accepts on a port (PeerAuthentication), and who the
pod is (its SPIFFE identity), as istiod decides them.

Resolution (pilot/pkg/security/authn/policy_applier.go ComposePeerAuthentication, with the
candidates of pilot/pkg/model/authentication.go getConfigsForWorkload): the oldest policy
without a selector in the root namespace (mesh-wide), the oldest without a selector in the
pod's namespace, and the oldest whose selector matches the pod in its namespace (a selector
in the root namespace selects nothing elsewhere). Each level that sets a mode overrides the
one above; UNSET inherits; nothing set is PERMISSIVE. `portLevelMtls` (workload policies
only) sets a container port's mode, UNSET there inheriting the workload's. "Oldest" is the
first applied here: a lab applies its files in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import field
from typing import Literal

from meshlab.load.istio.peerauthentication import PeerAuthentication
from meshlab.load.manifests import Resource
from meshlab.mesh.names import ROOT_NAMESPACE, selects
from meshlab.mesh.registry import PodInstance
from meshlab.records import dataclass

Mode = Literal["DISABLE", "PERMISSIVE", "STRICT"]
DEFAULT_MODE: Mode = "PERMISSIVE"  # ComposePeerAuthentication's starting point
TRUST_DOMAIN = "cluster.local"


@dataclass(frozen=True)
class PodMtls:
    """A pod's effective policy: its mode, per-port overrides, and the policies behind them."""

    mode: Mode = DEFAULT_MODE
    ports: Mapping[int, Mode] = field(default_factory=dict)
    sources: tuple[Resource, ...] = ()  # mesh, namespace, workload policies that applied

    def for_port(self, port: int) -> Mode:
        return self.ports.get(port, self.mode)


def peer_policies(resources: Sequence[Resource]) -> list[Resource]:
    """The simulated PeerAuthentications, oldest (first applied) first."""
    found = [r for r in resources if isinstance(r.body, PeerAuthentication) and r.simulated]
    return sorted(found, key=lambda r: r.order)


def _selector(policy: Resource) -> dict[str, str] | None:
    selector = policy.body.spec.selector
    return dict(selector.matchLabels) if selector and selector.matchLabels else None


def _mode(policy: Resource | None) -> Mode | None:
    mtls = policy.body.spec.mtls if policy is not None else None
    return None if mtls is None or mtls.mode == "UNSET" else mtls.mode


def _levels(
    policies: Sequence[Resource], namespace: str, labels: Mapping[str, str] | None
) -> tuple[Resource | None, Resource | None, Resource | None]:
    """The mesh-, namespace- and workload-level policies for a pod (labels None: no pod)."""
    mesh = namespace_level = workload = None
    for policy in policies:  # oldest first: the first found at each level wins
        selector = _selector(policy)
        if selector is None:
            if policy.namespace == ROOT_NAMESPACE:
                mesh = mesh or policy
            elif policy.namespace == namespace:
                namespace_level = namespace_level or policy
        elif (
            policy.namespace == namespace != ROOT_NAMESPACE
            and labels is not None
            and selects(selector, labels)
        ):
            workload = workload or policy
    return mesh, namespace_level, workload


def pod_mtls(policies: Sequence[Resource], pod: PodInstance) -> PodMtls:
    """The mode a pod's inbound side enforces, per container port."""
    mesh, namespace_level, workload = _levels(policies, pod.namespace, pod.labels)
    mode: Mode = DEFAULT_MODE
    for level in (mesh, namespace_level, workload):
        mode = _mode(level) or mode
    ports: dict[int, Mode] = {}
    if workload is not None:
        for port, mtls in workload.body.spec.ports.items():
            ports[port] = mode if mtls.mode == "UNSET" else mtls.mode
    sources = tuple(p for p in (mesh, namespace_level, workload) if p is not None)
    return PodMtls(mode, ports, sources)


def namespace_mode(policies: Sequence[Resource], namespace: str) -> Mode | None:
    """What a client's istiod infers for a Service in `namespace` (pilot/pkg/model/
    authentication.go GetNamespaceMutualTLSMode, used by push_context.go
    BestEffortInferServiceMTLSMode): the namespace policy's mode, else the mesh's, else
    None (unknown: auto mTLS goes by whether each endpoint has a sidecar). Workload
    policies are not read: a workload-level DISABLE needs a DestinationRule `tls`."""
    mesh, namespace_level, _ = _levels(policies, namespace, None)
    return _mode(namespace_level) or _mode(mesh)


def service_account(pod: PodInstance) -> str:
    """The pod's service account: its spec.serviceAccountName (for a Deployment, the pod
    template's), or the namespace's `default` one, as Kubernetes assigns it."""
    body = pod.owner.body
    spec = body.spec.template.spec if pod.owner.kind == "Deployment" else body.spec
    name = spec.serviceAccountName or spec.serviceAccount
    return name if isinstance(name, str) and name else "default"


def spiffe_id(namespace: str, account: str) -> str:
    """Istio's workload identity (pkg/spiffe/spiffe.go): spiffe://<trust domain>/ns/NS/sa/SA."""
    return f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{account}"


def explain(policies: Sequence[Resource], pod: PodInstance, port: int) -> str:
    """Why a pod's inbound side has its mode on `port`, naming the policy and its file:line
    (or that none applies, and Istio's default)."""
    effective = pod_mtls(policies, pod)
    mode = effective.for_port(port)
    deciding = [p for p in effective.sources if _mode(p) is not None or p.body.spec.portLevelMtls]
    if not deciding:
        return f"{mode}: no PeerAuthentication sets a mode for it (Istio's default is PERMISSIVE)"
    last = deciding[-1]
    return f"{mode} from {last.ref} ({last.location.short()})"


def misplaced(policies: Sequence[Resource], namespaces: set[str]) -> list[str]:
    """Policies that apply to no pod of the lab: in a namespace without pods (not the root
    namespace), or with a selector in the root namespace (it selects nothing elsewhere)."""
    out = []
    for policy in policies:
        selector = _selector(policy)
        if policy.namespace == ROOT_NAMESPACE and selector is not None:
            out.append(
                f"{policy.ref} ({policy.location.short()}) has a selector in the root "
                f"namespace {ROOT_NAMESPACE}: it selects only pods there; a mesh-wide policy "
                "has no selector"
            )
        elif policy.namespace != ROOT_NAMESPACE and policy.namespace not in namespaces:
            out.append(
                f"{policy.ref} ({policy.location.short()}) applies only to namespace "
                f"{policy.namespace}, which has no pods here; a mesh-wide policy goes in "
                f"{ROOT_NAMESPACE} (the root namespace), a namespace's in that namespace"
            )
    return out
