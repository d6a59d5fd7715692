"""What a check's request origin (`request.from`) and hop bucket (`by.service`) need from the
lab itself, checked once the manifests are loaded: the workload exists, a Gateway takes the
browser's requests, the Service is in the lab. And the configuration that origin's client gets,
for `expect: configured`.

Why here and not in the schema: the check's schema sees lab.yaml only; these need the
manifests, and a wrong name must still be an error at its line before anything starts.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

from meshlab.checks.hops import service_host, short_service
from meshlab.checks.request import RequestSpec
from meshlab.errors import InputError, Location
from meshlab.load.manifests import Resource
from meshlab.mesh.expect import Cause, ExpectedSplit, Source, configured_split
from meshlab.mesh.gateway_plan import build_gateway_plan
from meshlab.mesh.gateways import ProvidedGateway, provided_gateways
from meshlab.mesh.plan import MeshPlan, build_plan
from meshlab.mesh.proxies import sidecar_plans
from meshlab.mesh.request import Origin, ProbeRequest
from meshlab.mesh.trace import find_workload

# The labels of the ingress gateway meshlab provides, as the course's Istio install has it
# (manifests/charts/gateways/istio-ingress/values.yaml: `istio: ingressgateway`).
INGRESS_LABELS = {"istio": "ingressgateway", "app": "istio-ingressgateway"}


def check_origin(
    request: RequestSpec,
    service: str | None,
    resources: Sequence[Resource],
    plan: MeshPlan,
    locate: Callable[..., Location],
) -> None:
    """InputError at the line of `from:` or `by.service:` (`service`, None when the check
    reads no hop) when the lab cannot honour it. `locate(*path)` gives a position inside
    the check."""
    origin = request.origin
    if origin.kind == "workload" and origin.workload is not None:
        try:
            find_workload(plan.registry, origin.workload, plan.client_namespace)
        except ValueError as exc:
            names = sorted({p.owner.name for p in plan.registry.pods})
            close = difflib.get_close_matches(origin.workload.rpartition("/")[2], names, 1)
            raise InputError(
                f"request.from: {exc}",
                locate("request", "from", "workload"),
                hint=f"did you mean {{workload: {close[0]}}}?"
                if close
                else "name a Deployment or Pod of the lab's manifests, e.g. {workload: webapp}",
            ) from None
    if origin.kind == "browser" and not ingress_gateway_selected(resources):
        raise InputError(
            "request.from: browser: requests from the browser enter through the ingress "
            "gateway, and no Gateway of the lab selects it",
            locate("request", "from"),
            hint="add a Gateway with `selector: {istio: ingressgateway}` and a server for the "
            "URL's host (port 80), and bind the VirtualService to it with `gateways:`",
        )
    if service is not None:
        fqdn = service_host(service, plan.client_namespace)
        if plan.registry.lookup(fqdn) is None:
            known = sorted(
                short_service(s.fqdn, plan.client_namespace) for s in plan.registry.services
            )
            raise InputError(
                f"by.service: no Service {service!r} in the lab "
                f"(Services: {', '.join(known) or 'none'})",
                locate("by", "service"),
            )


def ingress_gateway_selected(resources: Sequence[Resource]) -> bool:
    """Some Gateway selects an ingress gateway: the install's (its selector is a subset of
    that gateway's labels; one without a selector applies to every gateway proxy,
    pilot/pkg/model/push_context.go gatewayWithInstances) or the lab's own."""
    return any(_is_ingress(g) for g in provided_gateways(resources))


def _is_ingress(gateway: ProvidedGateway) -> bool:
    return gateway.labels.get("istio") == INGRESS_LABELS["istio"]


def client_plan(origin: Origin, resources: Sequence[Resource] | None, plan: MeshPlan) -> MeshPlan:
    """The plan of the proxy a request first meets: the ingress gateway's for a browser; a
    named workload's own sidecar's (its namespace and labels decide `sourceLabels` and
    `workloadSelector`, as for `meshlab explain --from`); the lab's client's otherwise."""
    if origin.kind == "browser" and resources is not None:
        ingress = next(
            (g for g in provided_gateways(resources, plan.registry) if _is_ingress(g)),
            None,
        )
        return plan if ingress is None else build_gateway_plan(resources, ingress)
    if origin.kind != "workload" or origin.workload is None or resources is None:
        return plan
    workload = find_workload(plan.registry, origin.workload, plan.client_namespace)
    return build_plan(resources, workload.namespace, workload.labels)


def configured_for(
    request: ProbeRequest,
    label: str | None,
    plan: MeshPlan,
    resources: Sequence[Resource] | None = None,
) -> ExpectedSplit:
    """What the configuration gives this request at its first hop, from `plan` (the plan of
    the proxy it first meets, `client_plan`: the gateway's for a browser); empty when meshlab
    cannot say (by a hop of the chain: those checks state their shares, the schema makes
    sure). With the lab's `resources`, what lies behind the first hop counts too: a failure
    or a delay there (mesh/chain_answers.py)."""
    if label is None or (request.origin.kind == "browser" and plan.gateway is None):
        return ExpectedSplit()
    if request.origin.kind == "no-sidecar":
        return direct_split(plan, request, label)
    plan_of = sidecar_plans(resources) if resources is not None else None
    return configured_split(plan, request, label, plan_of)


def direct_split(plan: MeshPlan, request: ProbeRequest, by: str) -> ExpectedSplit:
    """A client without a sidecar: no VirtualService applies on its side (routing is the
    client sidecar's outbound job; the server's inbound listener does not route by host,
    pilot/pkg/networking/core/listener_builder.go), so kube-proxy picks one of the Service's
    endpoints at random, each equally likely (kubernetes pkg/proxy/iptables/proxier.go,
    `statistic --mode random` per endpoint)."""
    expected = ExpectedSplit()
    fqdn = service_host(request.host, plan.client_namespace)
    service = plan.registry.service_by_fqdn(fqdn)
    endpoints = service.endpoints.get(request.port, []) if service else []
    if service is None or not endpoints:
        expected.add(request.host, 1.0)
        reason = (
            f"no Service named {request.host!r}"
            if service is None
            else f"Service {service.name} has no pods behind port {request.port}"
        )
        expected.causes.append(Cause(request.host, "no response", reason))
        return expected
    expected.route = f"Service {service.namespace}/{service.name} (no client sidecar)"
    source = Source(f"Service {service.namespace}/{service.name}", service.resource.location)
    for endpoint in endpoints:
        expected.add(endpoint.pod.labels.get(by, "unknown"), 1.0 / len(endpoints), source)
    return expected
