"""Every proxy of a lab's mesh and the plan istiod would send each: the test client's sidecar,
one sidecar per workload (pods with the same namespace and labels get the same config from
istiod, so they share one plan), and the gateways the lab's Gateways select.

A plan depends on the proxy's namespace and labels (VirtualService `sourceLabels`,
DestinationRule and Sidecar `workloadSelector`, exportTo), so each workload gets its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import field
from typing import Literal

from meshlab.load.manifests import Resource
from meshlab.mesh.gateway_plan import build_gateway_plan
from meshlab.mesh.gateways import provided_gateways
from meshlab.mesh.injection import has_sidecar, namespaces_of
from meshlab.mesh.model import MeshPlan
from meshlab.mesh.plan import build_plan
from meshlab.mesh.registry import PodInstance
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

    @property
    def all(self) -> list[ProxyPlan]:
        return [self.client, *self.sidecars, *self.gateways]

    def sidecar_of(self, pod: str) -> ProxyPlan | None:
        return next((p for p in self.sidecars if pod in p.pods), None)

    def gateway(self, name: str) -> ProxyPlan | None:
        return next((p for p in self.gateways if p.name == name), None)

    def ingress(self) -> ProxyPlan | None:
        """The gateway a browser reaches: the one labelled `istio: ingressgateway`."""
        return next((p for p in self.gateways if p.labels.get("istio") == INGRESS_LABEL), None)


PlanFor = Callable[[str, Mapping[str, str]], MeshPlan]


def build_proxies(
    resources: Sequence[Resource],
    client: MeshPlan,
    plan_for: PlanFor | None = None,
) -> MeshProxies:
    """The client's plan (already built), a plan per meshed workload, and the gateways' (the
    install's ingress gateway when a Gateway selects it, or the lab's own gateway workload)."""
    namespaces = namespaces_of(resources)
    gateways = [
        ProxyPlan(
            g.name,
            "gateway",
            g.namespace,
            dict(g.labels),
            build_gateway_plan(resources, g),
            (g.pod.name,) if g.pod is not None else (),
        )
        for g in provided_gateways(resources, client.registry)
    ]
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
    for (namespace, labels), pods in groups.items():
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
    return MeshProxies(proxy, sidecars, gateways, frozenset(meshed))


def sidecar_plans(resources: Sequence[Resource]) -> Callable[[PodInstance], MeshPlan | None]:
    """Each pod's sidecar plan, built on first ask and shared by the pods of one workload
    (same namespace and labels: istiod gives them one config); None for a pod the injector
    leaves without a sidecar."""
    namespaces = namespaces_of(resources)
    built: dict[tuple[str, tuple[tuple[str, str], ...]], MeshPlan] = {}

    def plan_of(pod: PodInstance) -> MeshPlan | None:
        if not has_sidecar(pod.owner, namespaces):
            return None
        key = (pod.namespace, tuple(sorted(pod.labels.items())))
        if key not in built:
            shared = next(iter(built.values())).registry if built else None
            built[key] = build_plan(resources, pod.namespace, dict(pod.labels), registry=shared)
        return built[key]

    return plan_of
