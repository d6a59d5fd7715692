"""Gateways and the VirtualServices bound to them: IST0101 (gateway, selector), IST0132,
IST0145, IST0162, IST0133 (legacy gateway names), ML0203 (a VirtualService sidecars ignore).

A lab folder has no istio-system: the demo profile's ingress and egress gateways (labels
`istio: ingressgateway` / `istio: egressgateway`, Services with ports 80 and 443) are taken as
installed unless the files define pods with those labels themselves.
"""

from __future__ import annotations

from meshlab.analysis import messages as msg
from meshlab.analysis.base import Analyzer, Context, Metadata
from meshlab.analysis.util import INTERNAL_GATEWAY, labels_text
from meshlab.load import istio
from meshlab.load.manifests import Resource
from meshlab.load.yamlio import PathKey
from meshlab.mesh.gateways import INSTALL_GATEWAYS
from meshlab.mesh.names import (
    bound_to_mesh,
    gateway_key,
    hosts_overlap,
    is_legacy_gateway_name,
    namespace_admits,
    resolve_host,
    selects,
    split_namespaced_host,
)
from meshlab.records import dataclass


@dataclass(frozen=True)
class GatewayPod:
    """A pod a Gateway's selector may pick (the lab's, or the install's default gateways) and the
    ports its Services reach it on, for the selector and port analyzers."""

    name: str
    namespace: str
    labels: dict[str, str]
    ports: frozenset[int]  # ports and targetPorts of the Services in front of it


# The course install's gateways, as the embedded backend provides them (mesh/gateways.py):
# reached on their Services' ports and targetPorts.
_DEFAULT_GATEWAYS = tuple(
    GatewayPod(
        f"{g.name} (demo profile)",
        g.namespace,
        dict(g.labels),
        frozenset(n for p in g.ports for n in (p.port, p.target_port)),
    )
    for g in INSTALL_GATEWAYS
)


def gateway_pods(ctx: Context) -> list[GatewayPod]:
    registry = ctx.registry
    ports: dict[int, set[int]] = {id(pod): set() for pod in registry.pods}
    for service in registry.services:
        if not service.selector:
            continue
        for pod in ctx.pods_with(service.selector, service.namespace):
            for port in service.ports:
                ports[id(pod)].add(port.number)
                target = pod.resolve_target_port(port.target, port.number)
                if target is not None:
                    ports[id(pod)].add(target)
    pods = [
        GatewayPod(pod.name, pod.namespace, pod.labels, frozenset(ports[id(pod)]))
        for pod in registry.pods
    ]
    for default in _DEFAULT_GATEWAYS:
        if not any(p.labels.get("istio") == default.labels["istio"] for p in pods):
            pods.append(default)
    return pods


def _server_hosts(gateway: Resource, vs_namespace: str) -> list[str]:
    """The hosts of a Gateway's servers that a VirtualService in `vs_namespace` may bind."""
    found = []
    spec: istio.GatewaySpec = gateway.body.spec
    for server in spec.servers:
        for entry in server.hosts:
            ns, host = split_namespaced_host(entry)
            if namespace_admits(ns, gateway.namespace, vs_namespace):
                found.append(host)
    return found


#: The Kubernetes Gateway API's Gateway, as the loader names it (kubectl's gateway.<group>).
K8S_GATEWAY = "Gateway.gateway.networking.k8s.io"


def _listener_hosts(gateway: Resource) -> list[str] | None:
    """The hostnames of a Gateway API Gateway's listeners; None when one listener has none
    (it serves every host). Istio: vsHostInKubernetesGateway in
    pkg/config/analysis/analyzers/virtualservice/gateways.go."""
    spec = getattr(gateway.body, "spec", None)
    listeners = spec.get("listeners") if isinstance(spec, dict) else None
    found = []
    for listener in listeners if isinstance(listeners, list) else []:
        hostname = listener.get("hostname") if isinstance(listener, dict) else None
        if not isinstance(hostname, str) or not hostname:
            return None
        found.append(hostname)
    return found


def _legacy_name(
    ctx: Context, vs: Resource, at: PathKey, reference: str, key: tuple[str, str]
) -> None:
    if is_legacy_gateway_name(reference):
        ctx.report(
            msg.SCHEMA_WARNING(
                vs,
                vs.locate(*at),
                message=f"gateway {reference!r} uses the legacy name.namespace "
                f"form; Istio reads it as {key[0]}/{key[1]}",
                hint=f"write {key[0]}/{key[1]}",
            )
        )


def _check_listener_hosts(
    ctx: Context, vs: Resource, at: PathKey, reference: str, gateway: Resource
) -> None:
    """IST0132 for a Gateway API Gateway: no listener hostname covers a host of the VS."""
    listener_hosts = _listener_hosts(gateway)
    vs_hosts = vs.body.spec.hosts
    if listener_hosts is None or any(hosts_overlap(g, h) for g in listener_hosts for h in vs_hosts):
        return
    ctx.report(
        msg.HOST_NOT_IN_GATEWAY(
            vs,
            vs.locate(*at),
            vs_hosts=", ".join(vs_hosts),
            gateway=reference,
            gateway_hosts=", ".join(listener_hosts) or "none",
        )
    )


class VirtualServiceGatewayAnalyzer(Analyzer):
    metadata = Metadata(
        name="virtualservice.GatewayAnalyzer",
        description="the gateways a VirtualService names exist and serve its hosts",
        inputs=("VirtualService", "Gateway", K8S_GATEWAY),
    )

    def analyze(self, ctx: Context) -> None:
        gateways = {(g.namespace, g.name): g for g in ctx.of_kind("Gateway")}
        # A name that is no Istio Gateway may be a Gateway API one (istioctl looks there
        # second, and checks the VirtualService's hosts against its listeners).
        k8s_gateways = {(g.namespace, g.name): g for g in ctx.of_kind(K8S_GATEWAY)}
        for vs in ctx.of_kind("VirtualService"):
            spec: istio.VirtualServiceSpec = vs.body.spec
            hosts = [resolve_host(h, vs.namespace) for h in spec.hosts]
            references: list[tuple[PathKey, str]] = [
                (("spec", "gateways", i), g) for i, g in enumerate(spec.gateways)
            ]
            for i, http in enumerate(spec.http):
                for j, match in enumerate(http.match):
                    references += [
                        (("spec", "http", i, "match", j, "gateways", k), g)
                        for k, g in enumerate(match.gateways)
                    ]
            for at, reference in references:
                key = gateway_key(reference, vs.namespace)
                if key is None or INTERNAL_GATEWAY in reference:
                    continue  # an internal gateway is IST0165's (and no Gateway object)
                _legacy_name(ctx, vs, at, reference, key)
                gateway = gateways.get(key)
                k8s_gateway = k8s_gateways.get(key) if gateway is None else None
                if k8s_gateway is not None:
                    if at[1] == "gateways":
                        _check_listener_hosts(ctx, vs, at, reference, k8s_gateway)
                    continue
                if gateway is None:
                    ctx.report(
                        msg.GATEWAY_NOT_FOUND(
                            vs,
                            vs.locate(*at),
                            gateway=reference,
                            namespace=key[0],
                            name=key[1],
                            hint="the gateway is written <namespace>/<name> or just <name> "
                            "for one in the VirtualService's namespace",
                        )
                    )
                    if at[1] == "gateways":  # istioctl says both, as meshlab does
                        ctx.report(
                            msg.HOST_NOT_IN_GATEWAY(
                                vs,
                                vs.locate(*at),
                                vs_hosts=", ".join(spec.hosts),
                                gateway=reference,
                                gateway_hosts="it does not exist",
                            )
                        )
                    continue
                if at[1] != "gateways":
                    continue
                server_hosts = _server_hosts(gateway, vs.namespace)
                if not any(hosts_overlap(g, h) for g in server_hosts for h in spec.hosts + hosts):
                    ctx.report(
                        msg.HOST_NOT_IN_GATEWAY(
                            vs,
                            vs.locate(*at),
                            vs_hosts=", ".join(spec.hosts),
                            gateway=reference,
                            gateway_hosts=", ".join(server_hosts) or "none for this namespace",
                        )
                    )
            if not bound_to_mesh(spec.gateways):
                ctx.report(
                    msg.VS_NOT_FOR_MESH(
                        vs,
                        vs.locate("spec", "gateways"),
                        gateways=", ".join(spec.gateways),
                        vs_hosts=", ".join(spec.hosts),
                        hosts=hosts,
                        hint="add `mesh` to gateways if traffic inside the mesh should follow "
                        "these rules too",
                    )
                )


class GatewaySelectorAnalyzer(Analyzer):
    metadata = Metadata(
        name="gateway.IngressGatewayPortAnalyzer",
        description="a Gateway's selector picks gateway pods whose Services expose its ports",
        inputs=("Gateway", "Service", "Deployment", "Pod"),
        needs=frozenset({"pods"}),
    )

    def analyze(self, ctx: Context) -> None:
        pods = gateway_pods(ctx)
        for gateway in ctx.of_kind("Gateway"):
            spec: istio.GatewaySpec = gateway.body.spec
            if not spec.selector:
                continue
            chosen = [p for p in pods if selects(spec.selector, p.labels)]
            if not chosen:
                ctx.report(
                    msg.GATEWAY_SELECTOR_NO_PODS(
                        gateway,
                        gateway.locate("spec", "selector"),
                        selector=labels_text(spec.selector),
                        hint="Istio's ingress gateway has the label istio: ingressgateway",
                    )
                )
                continue
            ports = frozenset().union(*(p.ports for p in chosen))
            for i, server in enumerate(spec.servers):
                if server.port.number not in ports:
                    listed = ", ".join(map(str, sorted(ports))) or "none"
                    ctx.report(
                        msg.GATEWAY_PORT_NOT_ON_SERVICE(
                            gateway,
                            gateway.locate("spec", "servers", i, "port", "number"),
                            port=server.port.number,
                            selector=labels_text(spec.selector),
                            hint=f"the gateway pods are reached on {listed}",
                        )
                    )


class ConflictingGatewaysAnalyzer(Analyzer):
    metadata = Metadata(
        name="gateway.ConflictingGatewayAnalyzer",
        description="no two Gateways claim the same host on the same port of the same pods",
        inputs=("Gateway", "Service", "Deployment", "Pod"),
    )

    def analyze(self, ctx: Context) -> None:
        gateways = ctx.of_kind("Gateway")
        pods: list[GatewayPod] | None = None
        for gateway in gateways:
            spec: istio.GatewaySpec = gateway.body.spec
            for other in gateways:
                if other is gateway:
                    continue
                if other.body.spec.selector != spec.selector:
                    # gateway/conflictinggateway.go: selectors that differ, one inside the
                    # other, and a pod that both pick (the same proxy serves both).
                    pods = gateway_pods(ctx) if pods is None else pods
                    if not _same_pods(spec.selector, other.body.spec.selector, pods):
                        continue
                for i, server in enumerate(spec.servers):
                    overlap = _overlap(server, other.body.spec.servers)
                    if overlap:
                        ctx.report(
                            msg.CONFLICTING_GATEWAYS(
                                gateway,
                                gateway.locate("spec", "servers", i),
                                other=f"{other.namespace}/{other.name}",
                                selector=labels_text(spec.selector),
                                port=server.port.number,
                                overlap=", ".join(overlap),
                                hint="serve these hosts from one Gateway, or give them "
                                "different ports or hosts",
                            )
                        )


def _same_pods(a: dict[str, str], b: dict[str, str], pods: list[GatewayPod]) -> bool:
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    if not small or any(large.get(k) != v for k, v in small.items()):
        return False
    return any(selects(large, pod.labels) for pod in pods)


def _overlap(server: istio.Server, others: list[istio.Server]) -> list[str]:
    found: list[str] = []
    for other in others:
        if other.port.number != server.port.number:
            continue
        for a in server.hosts:
            for b in other.hosts:
                host_a, host_b = split_namespaced_host(a)[1], split_namespaced_host(b)[1]
                if hosts_overlap(host_a, host_b) and host_a not in found:
                    found.append(host_a)
    return found
