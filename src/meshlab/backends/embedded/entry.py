"""Where a request enters the simulated mesh, by its origin (`ProbeRequest.origin`):

- `mesh`: the test client's sidecar (its outbound listener for the request's port);
- `workload`: that workload's own sidecar, so its namespace and labels apply (a workload
  without a sidecar sends like a client without one);
- `browser`: the ingress gateway's listener for the URL's port (meshlab knows the gateway's
  address, as the course's students know the NodePort; the Host header is the URL's);
- `no-sidecar`: the Service's ClusterIP, played by a kube-proxy listener (a random pod).

Before any proxy, DNS must know the name and something must listen on the port: those
refusals are said here, as the client's own error, never as a proxy's answer.
"""

from __future__ import annotations

from collections.abc import Mapping

from meshlab.backends.embedded.envoy.bootstrap import prefix_of
from meshlab.backends.embedded.envoy.inbound import kube_proxy_listener_name
from meshlab.mesh.names import host_matches
from meshlab.mesh.passthrough import cluster_dns, passed_through
from meshlab.mesh.plan import MeshPlan
from meshlab.mesh.proxies import MeshProxies, ProxyPlan
from meshlab.mesh.request import ProbeRequest
from meshlab.mesh.trace import find_workload
from meshlab.records import dataclass


@dataclass(frozen=True)
class Entry:
    """The listener port a request is sent to, or why it cannot be sent."""

    port: int | None = None
    refusal: str | None = None
    proxy: ProxyPlan | None = None  # None: no proxy on the client side (kube-proxy)
    caller: str | None = None  # the calling pod, when the origin is a workload
    # the cluster playing the ClusterIP the client dialled, when its sidecar only passes the
    # name through (ALLOW_ANY's PassthroughCluster: mesh/passthrough.py)
    passthrough: str | None = None


def entry_for(
    proxies: MeshProxies, ports: Mapping[str, int], request: ProbeRequest, namespace: str
) -> Entry:
    origin = request.origin
    if origin.kind == "browser":
        return _gateway_entry(proxies, ports, request)
    caller = None
    proxy: ProxyPlan | None = proxies.client
    if origin.kind == "workload":
        assert origin.workload is not None
        registry = proxies.client.plan.registry
        try:
            workload = find_workload(registry, origin.workload, namespace)
        except ValueError as exc:
            return Entry(refusal=str(exc))
        pod = next(
            p
            for p in registry.pods
            if p.owner.name == workload.name and p.namespace == workload.namespace
        )
        caller = pod.name
        proxy = proxies.sidecar_of(pod.name)
    elif origin.kind == "no-sidecar":
        proxy = None
    if proxy is None:
        return _kube_proxy_entry(proxies, ports, request, namespace, caller)
    through = passed_through(proxy.plan, request.host, request.port, proxy.namespace)
    listener = proxy.plan.listener_for(request.port)
    if through is not None and listener is None:
        # no listener for the port: the virtual outbound listener passes the bytes on to
        # the ClusterIP (plaintext), where kube-proxy picks a pod
        original = ports.get(kube_proxy_listener_name(through.fqdn, request.port))
        return Entry(original, None if original else "connection refused", None, caller)
    refusal = unreachable(proxy.plan, request, proxy.namespace)
    if refusal is not None:
        return Entry(refusal=refusal, caller=caller)
    assert listener is not None
    original_dst = kube_proxy_listener_name(through.fqdn, request.port) if through else None
    return Entry(ports[prefix_of(proxy) + listener.name], None, proxy, caller, original_dst)


def _gateway_entry(proxies: MeshProxies, ports: Mapping[str, int], request: ProbeRequest) -> Entry:
    """A browser outside the mesh: the ingress gateway's listener for the URL's port."""
    gateway = proxies.ingress()
    if gateway is None:
        return Entry(
            refusal="no ingress gateway: the lab has no Gateway selecting "
            "`istio: ingressgateway`, so nothing outside the mesh can reach it"
        )
    # listener_for knows the NodePort too: the course's browser types :31380 for port 80
    listener = gateway.plan.listener_for(request.port)
    if listener is None:
        return Entry(
            refusal=f"connection refused: the ingress gateway serves no port {request.port}"
        )
    return Entry(ports[prefix_of(gateway) + listener.name], proxy=gateway)


def unreachable(plan: MeshPlan, request: ProbeRequest, namespace: str | None = None) -> str | None:
    """What happens before the client's sidecar: DNS must know the name (the cluster's DNS
    knows every Service, whatever the sidecar imports), and some listener the port."""
    known = {d for table in plan.route_tables.values() for v in table for d in v.domains}
    # A headless Service's `*.` names stand for its pods' own DNS names.
    pods = any(host_matches(d, request.host) for d in known if d.startswith("*."))
    public = _public_dns_name(request.host)  # the cluster's DNS asks the outside world
    fqdn = cluster_dns(request.host, namespace or plan.client_namespace)
    service = fqdn is not None and plan.registry.service_by_fqdn(fqdn) is not None
    if (request.host not in known and not pods and not public and not service) or (
        request.host == "*"
    ):
        return f"could not resolve host {request.host!r}: no Service has that name"
    if plan.listener_for(request.port) is None:
        return f"connection failed: no Service in the mesh serves HTTP on port {request.port}"
    return None


def _public_dns_name(host: str) -> bool:
    """A dotted name outside the cluster's domains (`api.example.com`): a pod resolves it
    through the cluster's upstream DNS, so the request reaches its sidecar, whose catch-all
    decides (ALLOW_ANY passes it through, REGISTRY_ONLY answers 502). meshlab resolves no
    name: only the sidecar's route table is consulted."""
    labels = host.lower().rstrip(".").split(".")
    cluster_local = labels[-1] in ("local", "svc") or "svc" in labels
    return len(labels) > 1 and not cluster_local and not labels[-1].isdigit()


def _kube_proxy_entry(
    proxies: MeshProxies,
    ports: Mapping[str, int],
    request: ProbeRequest,
    namespace: str,
    caller: str | None,
) -> Entry:
    """A client without a sidecar: cluster DNS gives the Service's ClusterIP."""
    fqdn = cluster_dns(request.host, namespace)
    service = proxies.client.plan.registry.service_by_fqdn(fqdn) if fqdn else None
    if service is None or service.headless:
        return Entry(
            refusal=f"could not resolve host {request.host!r}: no Service has that name",
            caller=caller,
        )
    port = ports.get(kube_proxy_listener_name(service.fqdn, request.port))
    if port is None:
        return Entry(
            refusal=f"connection refused: {service.name} has no port {request.port}",
            caller=caller,
        )
    return Entry(port, caller=caller)
