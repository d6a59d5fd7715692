"""The service registry istiod builds from Kubernetes: services, their ports and endpoints.

Deployments become pods here (one per replica, labels from the template), because istiod sees
pods, not Deployments; a lab folder has only the Deployments.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import field, replace
from functools import cached_property

from meshlab.load import k8s
from meshlab.load.manifests import Resource
from meshlab.mesh.external import EXTERNAL_LABEL, external_hosts
from meshlab.mesh.names import selects, service_fqdn
from meshlab.records import dataclass

_PROTOCOLS = {
    "http": "HTTP",
    "http2": "HTTP2",
    "https": "HTTPS",
    "grpc": "GRPC",
    "grpc-web": "GRPC-Web",
    "tcp": "TCP",
    "tls": "TLS",
    "mongo": "Mongo",
    "mysql": "MySQL",
    "redis": "Redis",
    "udp": "UDP",
    "http_proxy": "HTTP_PROXY",
}
_APP_PROTOCOLS = {
    "kubernetes.io/h2c": "HTTP2",
    "kubernetes.io/ws": "HTTP",
    "kubernetes.io/wss": "HTTPS",
}
_TCP_BY_PORT = {25, 53, 3306, 27017}
HTTP_PROTOCOLS = {"HTTP", "HTTP2", "GRPC", "GRPC-Web", "AUTO"}


def port_protocol(port: k8s.ServicePort) -> str:
    """The protocol istiod gives a Service port (see :func:`convert_protocol`)."""
    return convert_protocol(port.port, port.name, port.protocol, port.appProtocol)


def convert_protocol(
    number: int, name: str | None, transport: str | None = None, app_protocol: str | None = None
) -> str:
    """pkg/config/kube/conversion.go ConvertProtocol: UDP stays UDP; appProtocol, when set,
    is read *instead of* the name (no fallback); a `grpc-web` prefix before the general
    `prefix-` rule; pkg/config/protocol/instance.go Parse (case-insensitive); an unknown
    protocol is TCP on the well-known ports, else auto-detected ("AUTO")."""
    if transport == "UDP":
        return "UDP"
    text = name or ""
    if app_protocol is not None:
        text = app_protocol
        if app_protocol in _APP_PROTOCOLS:
            return _APP_PROTOCOLS[app_protocol]
    if text[: len("grpc-web")].lower() == "grpc-web":
        return "GRPC-Web"
    known = _PROTOCOLS.get(text.split("-", 1)[0].lower())
    if known is not None:
        return known
    return "TCP" if number in _TCP_BY_PORT else "AUTO"


@dataclass(frozen=True)
class ContainerPortInfo:
    """A container port of a pod: declared in its spec, or added because a Service targets it
    (Kubernetes routes to an undeclared port all the same). A named one resolves a targetPort."""

    number: int
    name: str | None


@dataclass(frozen=True)
class PodInstance:
    """A pod as the mesh sees it: labels, image, ports; `owner` is its Deployment or Pod."""

    name: str
    namespace: str
    labels: dict[str, str]
    image: str
    ports: tuple[ContainerPortInfo, ...]
    owner: Resource

    def resolve_target_port(self, target: int | str | None, service_port: int) -> int | None:
        """The container port a Service port lands on, or None if a named port is missing."""
        if target is None:
            return service_port
        if isinstance(target, int):
            return target
        if target.isdigit():
            return int(target)
        return next((p.number for p in self.ports if p.name == target), None)


@dataclass(frozen=True)
class Endpoint:
    """One address of a Service port: the pod and the container port the Service's targetPort lands
    on (an Envoy cluster's LbEndpoint)."""

    pod: PodInstance
    port: int  # container port on the pod


@dataclass(frozen=True)
class ServicePortInfo:
    """A Service port: its number, its name, the protocol istiod derives from them (an HTTP one gets
    routes, others a TCP proxy) and the targetPort it forwards to."""

    number: int
    name: str | None
    protocol: str
    target: int | str | None

    @property
    def is_http(self) -> bool:
        return self.protocol in HTTP_PROTOCOLS


@dataclass
class MeshService:
    """A Service (or ServiceEntry host) as istiod's registry holds it: its ports, the pods its
    selector picks per port, who may see it (exportTo) and the other names it answers to."""

    name: str
    namespace: str
    resource: Resource
    ports: list[ServicePortInfo]
    selector: dict[str, str] | None
    endpoints: dict[int, list[Endpoint]] = field(default_factory=dict)
    # clusterIP: None. Istio's Passthrough resolution (kube/conversion.go ConvertService).
    headless: bool = False
    # The `networking.istio.io/exportTo` annotation, split on commas; empty = everywhere.
    export_to: tuple[str, ...] = ()
    # ExternalName Services naming this one (Istio's Attributes.Aliases, resolved in
    # push_context.go resolveServiceAliases), as (name, namespace), sorted.
    aliases: list[tuple[str, str]] = field(default_factory=list)
    # For an ExternalName Service (Istio's Alias resolution): the host it names.
    external_name: str | None = None
    # A ServiceEntry host (mesh/external.py): its name in the mesh, as written.
    host: str | None = None

    @cached_property
    def fqdn(self) -> str:  # cached: planning asks for it once per Service and rule
        return self.host or service_fqdn(self.name, self.namespace)

    def port(self, number: int) -> ServicePortInfo | None:
        return next((p for p in self.ports if p.number == number), None)

    def visible_to(self, namespace: str) -> bool:
        """Istio's IsServiceVisible (pilot/pkg/model/push_context.go): `*` (or no
        annotation) everywhere, `.` its own namespace, else the namespaces named; `~` alone
        nowhere."""
        targets = self.export_to or ("*",)
        return (
            "*" in targets
            or ("." in targets and self.namespace == namespace)
            or namespace in targets
        )


@dataclass
class Registry:
    """istiod's service registry for a lab: the Services and ServiceEntry hosts, the pods (and
    loopback stand-ins) behind them, and ExternalName aliases, indexed by host name."""

    services: list[MeshService]
    pods: list[PodInstance]
    # ExternalName Services: no endpoints, no cluster of their own; a route to one goes to the
    # host it names, and a VirtualService may name one as a host (route.go GetDestinationCluster)
    externals: list[MeshService] = field(default_factory=list)
    # loopback stand-ins answering for ServiceEntry hosts (mesh/external.py): started like
    # pods but not workloads (no sidecar, no Deployment)
    external_pods: list[PodInstance] = field(default_factory=list)
    _by_fqdn: dict[str, MeshService] = field(init=False, repr=False, compare=False)
    _externals: dict[str, MeshService] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # An index, not a scan: planning looks a host up for every route (linear, not N^2).
        self._by_fqdn = {}
        for service in self.services:
            self._by_fqdn.setdefault(service.fqdn, service)  # the first, as a scan found
        self._externals = {}
        for external in self.externals:
            self._externals.setdefault(external.fqdn, external)

    def service_by_fqdn(self, fqdn: str) -> MeshService | None:
        return self._by_fqdn.get(fqdn)

    @property
    def all_pods(self) -> list[PodInstance]:
        """Every process the backend starts: the lab's pods and the external stand-ins."""
        return [*self.pods, *self.external_pods]

    def lookup(self, fqdn: str) -> MeshService | None:
        """A Service or, failing one, an ExternalName Service of that host (the sidecar's
        view of its services, which holds both)."""
        return self._by_fqdn.get(fqdn) or self._externals.get(fqdn)


def build_registry(resources: Sequence[Resource]) -> Registry:
    pods = [pod for r in resources for pod in _pods_of(r)]
    services: list[MeshService] = []
    external_names: dict[tuple[str, str], str] = {}
    externals: list[MeshService] = []
    for r in resources:
        if r.kind != "Service":
            continue
        spec: k8s.ServiceSpec = r.body.spec
        ports = [
            ServicePortInfo(p.port, p.name, port_protocol(p), p.targetPort) for p in spec.ports
        ]
        if spec.type == "ExternalName":
            if spec.externalName:
                target = spec.externalName.lower().rstrip(".")
                external_names[(r.name, r.namespace)] = target
                externals.append(
                    MeshService(
                        r.name,
                        r.namespace,
                        r,
                        ports,
                        None,
                        export_to=_export_to(r),
                        external_name=target,
                    )
                )
            continue
        services.append(
            MeshService(
                r.name,
                r.namespace,
                r,
                ports,
                spec.selector,
                headless=spec.clusterIP == "None",
                export_to=_export_to(r),
            )
        )
    _resolve_aliases(services, external_names)
    # Which pods each Service selects, from an index of pods by label (not every pod against
    # every Service): selected[i] lists the Services selecting pods[i], in Service order.
    selected: dict[int, list[MeshService]] = defaultdict(list)
    chosen: list[list[int]] = []
    index = _PodIndex(pods)
    for service in services:
        picks = index.selected_by(service)
        chosen.append(picks)
        for i in picks:
            selected[i].append(service)
    # containerPort is informational in Kubernetes: a Service's target port reaches the pod
    # whether declared or not, so the pod (its stand-in) must serve it.
    pods = [_with_target_ports(pod, selected.get(i, [])) for i, pod in enumerate(pods)]
    for service, picks in zip(services, chosen, strict=True):
        for port in service.ports:
            service.endpoints[port.number] = _endpoints(port, [pods[i] for i in picks])
    external_services, external_pods = _external(resources)
    return Registry([*services, *external_services], pods, externals, external_pods)


def _external(resources: Sequence[Resource]) -> tuple[list[MeshService], list[PodInstance]]:
    """ServiceEntry hosts (mesh/external.py): a Service per host, its endpoints loopback
    stand-ins. A port's protocol as conversion.go convertPort parses it (case-insensitive,
    unknown = auto-detected)."""
    services: list[MeshService] = []
    pods: list[PodInstance] = []
    for entry in external_hosts(resources).hosts:
        ports = [
            ServicePortInfo(
                p.number, p.name, _PROTOCOLS.get((p.protocol or "").lower(), "AUTO"), p.number
            )
            for p in entry.ports
        ]
        mine = [
            PodInstance(
                entry.pod_name(i),
                entry.resource.namespace,
                {EXTERNAL_LABEL: entry.host if len(entry.host) <= 63 else entry.slug},
                entry.image,
                tuple(ContainerPortInfo(p.number, p.name) for p in ports),
                entry.resource,
            )
            for i in range(entry.replicas)
        ]
        service = MeshService(
            entry.host,
            entry.resource.namespace,
            entry.resource,
            ports,
            None,
            export_to=entry.export_to,
            host=entry.host,
        )
        for port in ports:
            service.endpoints[port.number] = [Endpoint(p, port.number) for p in mine]
        services.append(service)
        pods += mine
    return services, pods


EXPORT_TO_ANNOTATION = "networking.istio.io/exportTo"


def _export_to(resource: Resource) -> tuple[str, ...]:
    """kube/conversion.go ConvertService: the annotation split on commas, each trimmed."""
    value = resource.body.metadata.annotations.get(EXPORT_TO_ANNOTATION) or ""
    return tuple(ns.strip() for ns in value.split(",")) if value else ()


def _resolve_aliases(
    services: list[MeshService], external_names: dict[tuple[str, str], str]
) -> None:
    """Istio's resolveServiceAliases (pilot/pkg/model/push_context.go): an ExternalName
    Service whose externalName is another Service's host is an alias of it (through chains of
    ExternalNames; a loop resolves to nothing); the concrete Service answers the alias's names
    too. An externalName outside the lab (a real DNS name) is not simulated."""
    by_host = {s.fqdn: s for s in reversed(services)}  # the first Service of a host wins
    unnamespaced = {service_fqdn(n, ns): target for (n, ns), target in external_names.items()}
    for (name, namespace), first in sorted(
        external_names.items(), key=lambda i: (i[0][1], i[0][0])
    ):
        target = first
        seen = {service_fqdn(name, namespace), target}
        while target in unnamespaced:
            target = unnamespaced[target]
            if target in seen:
                break
            seen.add(target)
        concrete = by_host.get(target)
        if concrete is not None:
            concrete.aliases.append((name, namespace))


class _PodIndex:
    """Pods by (namespace, label, value), so a selector is matched against the pods that
    carry one of its pairs instead of against every pod."""

    def __init__(self, pods: Sequence[PodInstance]) -> None:
        self.pods = pods
        self.by_pair: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        for i, pod in enumerate(pods):
            for key, value in pod.labels.items():
                self.by_pair[(pod.namespace, key, value)].append(i)

    def selected_by(self, service: MeshService) -> list[int]:
        """Indices of the pods `service` selects, in pod order."""
        if not service.selector:
            return []
        lists = [
            self.by_pair.get((service.namespace, k, v), []) for k, v in service.selector.items()
        ]
        smallest = min(lists, key=len)
        return [i for i in smallest if selects_pod(service, self.pods[i])]


def _with_target_ports(pod: PodInstance, services: list[MeshService]) -> PodInstance:
    """The pod with a port for every target port of the Services that select it."""
    declared = {p.number for p in pod.ports}
    extra: list[ContainerPortInfo] = []
    for service in services:
        for port in service.ports:
            target = pod.resolve_target_port(port.target, port.number)
            if target is not None and target not in declared:
                declared.add(target)
                extra.append(ContainerPortInfo(target, None))
    return replace(pod, ports=pod.ports + tuple(extra)) if extra else pod


def selects_pod(service: MeshService, pod: PodInstance) -> bool:
    # A Service without a selector has manually managed endpoints: none exist in a lab.
    if not service.selector or pod.namespace != service.namespace:
        return False
    return selects(service.selector, pod.labels)


def _endpoints(port: ServicePortInfo, pods: list[PodInstance]) -> list[Endpoint]:
    """The endpoints of one Service port among the pods its Service selects."""
    found = []
    for pod in pods:
        target = pod.resolve_target_port(port.target, port.number)
        if target is not None:
            found.append(Endpoint(pod, target))
    return found


def _pods_of(resource: Resource) -> list[PodInstance]:
    if resource.kind == "Pod":
        spec: k8s.PodSpec = resource.body.spec
        labels = dict(resource.body.metadata.labels)
        return [_pod(resource.name, resource, labels, spec)]
    if resource.kind != "Deployment":
        return []
    dspec: k8s.DeploymentSpec = resource.body.spec
    suffix = _template_hash(resource)
    # The Deployment controller adds pod-template-hash to every pod; subsets can select on it.
    labels = {**dspec.template.metadata.labels, "pod-template-hash": suffix}
    return [
        _pod(f"{resource.name}-{suffix}-{i}", resource, labels, dspec.template.spec)
        for i in range(dspec.replicas)
    ]


def _pod(name: str, owner: Resource, labels: dict[str, str], spec: k8s.PodSpec) -> PodInstance:
    container = spec.containers[0]
    ports = tuple(
        ContainerPortInfo(p.containerPort, p.name) for c in spec.containers for p in c.ports
    )
    return PodInstance(name, owner.namespace, labels, container.image or "", ports, owner)


def _template_hash(resource: Resource) -> str:
    """Stable like a ReplicaSet's pod-template-hash: the same manifest gives the same pod names.

    Dumped through the Deployment's serializer, built when it was validated: the same dict as
    the template's own dump, without building PodTemplate's schema again (~3 ms a run)."""
    body = resource.body.model_dump(
        mode="json", exclude_none=True, include={"spec": {"template": True}}
    )
    template = body["spec"]["template"]
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    return digest[:10]
