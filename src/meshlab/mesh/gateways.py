"""The gateway proxies a lab gets: what the course's Istio install provides (its ingress and
egress gateways in istio-system) when the lab's Gateways select them, or the lab's own.

A lab folder has no istio-system: meshlab plays the install as the course applies it
(`2-istio-minikube.yaml`, Istio 1.15 demo profile). A lab that defines a gateway workload
itself (a pod carrying an `istio` label, or running Istio's `proxyv2` image, that a Gateway
selects) gets that workload as the gateway instead of the install's one with the same `istio`
label (the same rule `meshlab analyze` follows); any other pod a Gateway selects is a sidecar
in Istio and gets no gateway configuration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import field

from meshlab.load.manifests import Resource
from meshlab.mesh.model import config_order
from meshlab.mesh.names import ISTIO_SYSTEM_NAMESPACE, selects
from meshlab.mesh.registry import PodInstance, Registry, build_registry
from meshlab.records import dataclass

INGRESS = "istio-ingressgateway"
EGRESS = "istio-egressgateway"


@dataclass(frozen=True)
class GatewayServicePort:
    """A port of the Service in front of a gateway: `port` is what a Gateway server names and
    clients call, `target_port` what the proxy listens on, `node_port` what a browser on the
    host reaches (the course's 31380)."""

    name: str | None
    port: int
    target_port: int
    node_port: int | None = None


@dataclass(frozen=True)
class ProvidedGateway:
    """A gateway proxy: the install's (`pod` None) or a pod of the lab."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    ports: tuple[GatewayServicePort, ...]
    pod: PodInstance | None = field(default=None, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def listen_port(self, number: int) -> int:
        """The port the proxy listens on for a Gateway server's port: istiod's resolvePorts
        (pilot/pkg/model/gateway.go) with a legacy label selector: the targetPort of the first
        Service port with that number, else the number as written."""
        return next((p.target_port for p in self.ports if p.port == number), number)

    def node_port(self, number: int) -> int | None:
        return next((p.node_port for p in self.ports if p.port == number), None)


# The course's install (`_course_files/.../2-istio-minikube.yaml`, Services
# istio-ingressgateway (type NodePort) and istio-egressgateway in istio-system).
INSTALL_GATEWAYS: tuple[ProvidedGateway, ...] = (
    ProvidedGateway(
        INGRESS,
        ISTIO_SYSTEM_NAMESPACE,
        {"app": INGRESS, "istio": "ingressgateway"},
        (
            GatewayServicePort("status-port", 15021, 15021),
            GatewayServicePort("http2", 80, 8080, 31380),
            GatewayServicePort("https", 443, 8443),
            GatewayServicePort("tcp", 31400, 31400),
        ),
    ),
    ProvidedGateway(
        EGRESS,
        ISTIO_SYSTEM_NAMESPACE,
        {"app": EGRESS, "istio": "egressgateway"},
        (GatewayServicePort("http2", 80, 8080), GatewayServicePort("https", 443, 8443)),
    ),
)


def selecting_gateways(resources: Sequence[Resource], labels: Mapping[str, str]) -> list[Resource]:
    """The Gateways that apply to a gateway proxy with `labels`, oldest first (push_context.go
    initGateways sorts by creation time; mergeGateways: a selector that is a subset of the
    proxy's labels, or none at all, applies; PILOT_SCOPE_GATEWAY_TO_NAMESPACE is off)."""
    found = [r for r in resources if r.kind == "Gateway" and selects(r.body.spec.selector, labels)]
    return sorted(found, key=config_order)


def provided_gateways(
    resources: Sequence[Resource], registry: Registry | None = None
) -> list[ProvidedGateway]:
    """The gateway proxies of this lab: the lab's own gateway workloads that a Gateway selects,
    then the install's gateways that some Gateway selects and that no lab workload with the
    same `istio` label replaces. No Gateway, no gateway proxy."""
    gateways = [r for r in resources if r.kind == "Gateway"]
    if not gateways:
        return []
    registry = registry or build_registry(resources)
    found: list[ProvidedGateway] = []
    seen: set[tuple[str, str]] = set()
    for pod in registry.pods:
        key = (pod.namespace, pod.owner.name)
        if key in seen or pod.owner.install or not is_gateway_workload(pod):
            continue
        if any(
            g.body.spec.selector and selects(g.body.spec.selector, pod.labels) for g in gateways
        ):
            seen.add(key)
            found.append(_lab_gateway(pod, registry))
    own = {g.labels.get("istio") for g in found}
    for install in INSTALL_GATEWAYS:
        if install.labels["istio"] in own:
            continue
        if selecting_gateways(gateways, install.labels):
            found.append(install)
    return found


def find_gateway(gateways: Sequence[ProvidedGateway], name: str) -> ProvidedGateway | None:
    """A gateway by `name` or `namespace/name` (`istio-ingressgateway`)."""
    return next((g for g in gateways if name in (g.name, g.ref)), None)


def is_gateway_workload(pod: PodInstance) -> bool:
    """A pod Istio would run as a gateway proxy: it carries an `istio` label (the install's
    convention, `istio: ingressgateway`) or runs Istio's proxy image."""
    image = pod.image.rsplit("/", 1)[-1]
    return "istio" in pod.labels or image.startswith("proxyv2")


def _lab_gateway(pod: PodInstance, registry: Registry) -> ProvidedGateway:
    """The lab's own gateway workload, behind the Services that select its pods."""
    ports: list[GatewayServicePort] = []
    for service in registry.services:
        if service.namespace != pod.namespace or not service.selector:
            continue
        if not selects(service.selector, pod.labels):
            continue
        for port in service.ports:
            target = pod.resolve_target_port(port.target, port.number) or port.number
            ports.append(GatewayServicePort(port.name, port.number, target))
    labels = {k: v for k, v in pod.labels.items() if k != "pod-template-hash"}
    return ProvidedGateway(pod.owner.name, pod.namespace, labels, tuple(ports), pod)
