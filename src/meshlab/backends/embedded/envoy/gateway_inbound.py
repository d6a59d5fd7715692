"""How a sidecar reaches a gateway proxy in the same Envoy: the egress gateway is a Service
sidecars route to (mesh/egress_gateway.py), and its endpoint is the gateway's own listener.
The gateway's listeners bind 127.0.0.1:0 (their port is known only after start), so each
gets an internal twin `inbound~<proxy>~<listen port>` (the same filter chains), and the
gateway's endpoints in every cluster point at that twin, as pod endpoints point at their
pod's inbound internal listener."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from meshlab.backends.embedded.envoy.clusters import inbound_listener_name
from meshlab.backends.embedded.envoy.routes import header
from meshlab.backends.embedded.hops import HOPS_HEADER
from meshlab.mesh.proxies import MeshProxies

EndpointOf = Callable[[str, int], "dict[str, Any] | None"]


def gateway_listener_name(proxy: str, port: int) -> str:
    """Named like a pod's inbound side, so `x-meshlab-upstream-host` names the gateway."""
    return inbound_listener_name(proxy, port)


# What the gateway did with the request, for the hop list (backends/embedded/hops.py): the
# gateway is no stand-in, so its listener's twin reports its own call. A value that breaks
# the JSON (a quote in the path) only loses the hop: hops are parsed defensively.
GATEWAY_HOPS = (
    '[{"host":"%REQ(:AUTHORITY)%","path":"%REQ(:PATH)%","upstream":"%UPSTREAM_HOST%",'
    '"cluster":"%UPSTREAM_CLUSTER%","status":%RESPONSE_CODE%,"flags":"%RESPONSE_FLAGS%",'
    '"hops":[]}]'
)


def gateway_endpoints(proxies: MeshProxies, inner: EndpointOf) -> EndpointOf:
    """`inner`, except that a gateway proxy's (name, listen port) is its internal twin."""
    ports = {
        (g.name, lst.bind_port or lst.port) for g in proxies.gateways for lst in g.plan.listeners
    }

    def endpoint(pod: str, port: int) -> dict[str, Any] | None:
        if (pod, port) in ports:
            name = gateway_listener_name(pod, port)
            return {"envoy_internal_address": {"server_listener_name": name}}
        return inner(pod, port)

    return endpoint


def gateway_twins(proxies: MeshProxies, listeners: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An internal twin of each gateway listener a cluster may name (the egress gateway's)."""
    by_name = {lst["name"]: lst for lst in listeners}
    twins: list[dict[str, Any]] = []
    for gateway in proxies.gateways:
        if not any(
            e.pod.name == gateway.name
            for c in proxies.client.plan.clusters.values()
            for e in c.endpoints
        ):
            continue  # no sidecar routes to it (the ingress gateway)
        for plan in gateway.plan.listeners:
            rendered = by_name.get(f"{gateway.name}~{plan.name}")
            if rendered is None:
                continue
            twin = copy.deepcopy(rendered)
            twin.pop("address", None)
            twin["name"] = gateway_listener_name(gateway.name, plan.bind_port or plan.port)
            twin["internal_listener"] = {}
            for chain in twin["filter_chains"]:
                for network in chain["filters"]:
                    config = network["typed_config"].get("route_config")
                    if config is not None:
                        config["response_headers_to_add"].append(header(HOPS_HEADER, GATEWAY_HOPS))
            twins.append(twin)
    return twins
