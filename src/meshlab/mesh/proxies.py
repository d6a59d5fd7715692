"""Every proxy of a lab's mesh and the plan istiod would send each: the test client's sidecar,
one sidecar per workload (pods with the same namespace and labels get the same config from
istiod, so they share one plan), and the gateways the lab's Gateways select.

A plan depends on the proxy's namespace and labels (VirtualService `sourceLabels`,
DestinationRule and Sidecar `workloadSelector`, exportTo), so each workload gets its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import field
from typing import Literal

from meshlab.load.manifests import Resource
from meshlab.mesh.gateway_plan import build_gateway_plan
from meshlab.mesh.gateways import provided_gateways
from meshlab.mesh.image_calls import calls_anyone
from meshlab.mesh.injection import has_sidecar, namespaces_of
from meshlab.mesh.model import MeshPlan
from meshlab.mesh.plan import build_plan
from meshlab.mesh.registry import PodInstance, Registry
from meshlab.mesh.request import Origin
from meshlab.records import dataclass

ProxyKind = Literal["client", "sidecar", "gateway"]
CLIENT_PROXY = "client"
INGRESS_LABEL = "ingressgateway"


@dataclass
class ProxyPlan:
    """One proxy: `name` prefixes its Envoy objects (the client's keep Istio's bare names)."""

    name: str
    kind: ProxyKind
    namespace: str
    labels: Mapping[str, str]
    plan: MeshPlan
    pods: tuple[str, ...] = ()  # the pods this config serves (a workload's replicas)


@dataclass
class MeshProxies:
    """Every proxy of the lab's mesh and its plan: the test client's sidecar, one sidecar per
    workload, and the gateways; a backend that runs the proxies renders each one's config."""

    client: ProxyPlan
    sidecars: list[ProxyPlan] = field(default_factory=list)
    gateways: list[ProxyPlan] = field(default_factory=list)
    meshed_pods: frozenset[str] = frozenset()  # pods with a sidecar (an inbound side)
    left_out: frozenset[str] = frozenset()  # meshed pods whose sidecar sends nothing here
    # where no request of the run can go (mesh/reach.py): meshed pods whose inbound side is
    # never entered, and (not None) the only Services whose ClusterIP a call can dial
    unreached: frozenset[str] = frozenset()
    direct: frozenset[str] | None = None

    @property
    def all(self) -> list[ProxyPlan]:
        return [self.client, *self.sidecars, *self.gateways]

    def sidecar_of(self, pod: str) -> ProxyPlan | None:
        """The pod's sidecar; None for a pod without one. A sidecar left out (`senders`)
        is a LookupError: nothing may send from it, and it must not pass for no sidecar."""
        if pod in self.left_out:
            raise LookupError(f"the sidecar of pod {pod} was left out: no request starts there")
        return next((p for p in self.sidecars if pod in p.pods), None)

    def gateway(self, name: str) -> ProxyPlan | None:
        return next((p for p in self.gateways if p.name == name), None)

    def ingress(self) -> ProxyPlan | None:
        """The gateway a browser reaches: the one labelled `istio: ingressgateway`."""
        return next((p for p in self.gateways if p.labels.get("istio") == INGRESS_LABEL), None)


PlanFor = Callable[[str, Mapping[str, str]], MeshPlan]


def gateway_proxies(resources: Sequence[Resource], registry: Registry) -> list[ProxyPlan]:
    """The gateways' proxies and plans: the install's ingress gateway when a Gateway selects
    it, or the lab's own gateway workload."""
    return [
        ProxyPlan(
            g.name,
            "gateway",
            g.namespace,
            dict(g.labels),
            build_gateway_plan(resources, g),
            (g.pod.name,) if g.pod is not None else (),
        )
        for g in provided_gateways(resources, registry)
    ]


def build_proxies(
    resources: Sequence[Resource],
    client: MeshPlan,
    plan_for: PlanFor | None = None,
    senders: Callable[[PodInstance], bool] | None = None,
    gateways: Sequence[ProxyPlan] | None = None,
) -> MeshProxies:
    """The client's plan (already built), a plan per meshed workload, and the gateways'
    (`gateway_proxies`, unless given).

    `senders`: the pods that may send a request through their sidecar (None: every one). A
    workload none of whose pods may send keeps its inbound side (`meshed_pods`) but gets no
    sidecar plan (`left_out`): its outbound config would never be exercised."""
    namespaces = namespaces_of(resources)
    if gateways is None:
        gateways = gateway_proxies(resources, client.registry)
    gateway_pods = {pod for g in gateways for pod in g.pods}

    def default_plan(namespace: str, labels: Mapping[str, str]) -> MeshPlan:
        return build_plan(resources, namespace, labels, registry=client.registry)

    make = plan_for or default_plan
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[PodInstance]] = {}
    meshed: set[str] = set()
    for pod in client.registry.pods:
        if pod.name in gateway_pods or not has_sidecar(pod.owner, namespaces):
            continue  # a gateway pod runs its proxy alone, with no app beside it
        meshed.add(pod.name)
        key = (pod.namespace, tuple(sorted(pod.labels.items())))
        groups.setdefault(key, []).append(pod)
    sidecars = []
    left_out: set[str] = set()
    for (namespace, labels), pods in groups.items():
        if senders is not None and not any(senders(p) for p in pods):
            left_out.update(p.name for p in pods)
            continue
        owner = pods[0].owner
        sidecars.append(
            ProxyPlan(
                f"{owner.kind.lower()}.{namespace}.{owner.name}",
                "sidecar",
                namespace,
                dict(labels),
                make(namespace, dict(labels)),
                tuple(p.name for p in pods),
            )
        )
    proxy = ProxyPlan(CLIENT_PROXY, "client", client.client_namespace, {}, client)
    return MeshProxies(proxy, sidecars, list(gateways), frozenset(meshed), frozenset(left_out))


def senders_for(origins: Iterable[Origin], namespace: str) -> Callable[[PodInstance], bool]:
    """The pods that may send through their sidecar when a run's requests start at `origins`
    (names as in the lab's `namespace`): the workloads named as origins, and every pod whose
    image calls another service (mesh/image_calls.py), since a request may reach any pod.
    The test client and the gateways, where the other origins start, are always there."""
    named = set()
    for origin in origins:
        if origin.kind == "workload" and origin.workload is not None:
            ns, _, short = origin.workload.rpartition("/")
            named.add((ns or namespace, short))

    def sends(pod: PodInstance) -> bool:
        return (pod.namespace, pod.owner.name) in named or calls_anyone(pod.image)

    return sends


class SidecarPlans:
    """Each pod's sidecar plan, built on first ask and shared by the pods of one workload
    (same namespace and labels: istiod gives them one config); None for a pod the injector
    leaves without a sidecar. `registry`: the one every plan reads (default: the first
    plan's)."""

    def __init__(self, resources: Sequence[Resource], registry: Registry | None = None) -> None:
        self.resources = resources
        self.registry = registry
        self.namespaces = namespaces_of(resources)
        self.built: dict[tuple[str, tuple[tuple[str, str], ...]], MeshPlan] = {}

    def __call__(self, pod: PodInstance) -> MeshPlan | None:
        if not has_sidecar(pod.owner, self.namespaces):
            return None
        return self.for_labels(pod.namespace, pod.labels)

    def for_labels(self, namespace: str, labels: Mapping[str, str]) -> MeshPlan:
        """The plan of the workload with these labels in `namespace` (PlanFor)."""
        key = (namespace, tuple(sorted(labels.items())))
        if key not in self.built:
            shared = self.registry or next((p.registry for p in self.built.values()), None)
            self.built[key] = build_plan(self.resources, namespace, dict(labels), registry=shared)
        return self.built[key]


def sidecar_plans(resources: Sequence[Resource]) -> Callable[[PodInstance], MeshPlan | None]:
    """Each pod's sidecar plan (SidecarPlans), for a caller that asks pod by pod."""
    return SidecarPlans(resources)
