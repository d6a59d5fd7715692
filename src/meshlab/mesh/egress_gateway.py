"""The install's egress gateway as a Service the sidecars can route to.

A VirtualService bound to `mesh` that sends an external host to
`istio-egressgateway.istio-system.svc.cluster.local` needs that Service in the sidecar's
registry: the course's install (`2-istio-minikube.yaml`; its ports as in Istio's chart,
manifests/charts/gateways/istio-egress/values.yaml) creates it, with the gateway's pod behind
it (pilot/pkg/serviceregistry/kube/conversion.go ConvertService, as for any Service).
meshlab plays the install, so when a Gateway selects the egress gateway (mesh/gateways.py
provides its proxy), the registry gets its Service; the endpoint is the gateway proxy itself
(`gateway_endpoint`), which the renderer reaches through an internal listener.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshlab.load.manifests import Resource
from meshlab.mesh.gateways import INSTALL_GATEWAYS, provided_gateways, selecting_gateways
from meshlab.mesh.names import service_fqdn
from meshlab.mesh.registry import (
    ContainerPortInfo,
    Endpoint,
    MeshService,
    PodInstance,
    Registry,
    ServicePortInfo,
    convert_protocol,
)

EGRESS_LABEL = "egressgateway"
GATEWAY_IMAGE = "istio/proxyv2"


def with_egress_gateway(registry: Registry, resources: Sequence[Resource]) -> Registry:
    """`registry` plus the install's egress gateway Service when the lab's Gateways select
    it and the lab defines no Service of that name itself."""
    added: list[MeshService] = []
    install = {(g.namespace, g.name) for g in INSTALL_GATEWAYS}
    for gateway in provided_gateways(resources, registry):
        if gateway.labels.get("istio") != EGRESS_LABEL:
            continue
        if (gateway.namespace, gateway.name) not in install or gateway.pod is not None:
            continue
        service = MeshService(
            gateway.name,
            gateway.namespace,
            selecting_gateways(resources, gateway.labels)[0],
            [
                # pkg/config/kube/conversion.go ConvertProtocol: the port name's prefix gives
                # the protocol (http2, https), as for any Service port
                ServicePortInfo(p.port, p.name, convert_protocol(p.port, p.name), p.target_port)
                for p in gateway.ports
            ],
            dict(gateway.labels),
        )
        if registry.service_by_fqdn(service.fqdn) is not None:
            continue
        pod = PodInstance(
            gateway.name,
            gateway.namespace,
            dict(gateway.labels),
            GATEWAY_IMAGE,
            tuple(ContainerPortInfo(p.target_port, p.name) for p in gateway.ports),
            service.resource,
        )
        for port in gateway.ports:
            service.endpoints[port.port] = [Endpoint(pod, port.target_port)]
        added.append(service)
    if not added:
        return registry
    return Registry(
        [*registry.services, *added], registry.pods, registry.externals, registry.external_pods
    )


def egress_gateway_hosts(gateways: Sequence[Resource]) -> dict[str, Resource]:
    """The install's egress gateway Service host when some Gateway selects it, for the
    analysis's host index (the Gateway stands in for the install's Service object)."""
    out: dict[str, Resource] = {}
    for install in INSTALL_GATEWAYS:
        if install.labels.get("istio") != EGRESS_LABEL:
            continue
        selecting = selecting_gateways(gateways, install.labels)
        if selecting:
            out[service_fqdn(install.name, install.namespace)] = selecting[0]
    return out
