"""Fuzzing the gateway translation: random Gateways (selectors, ports, protocols, hosts with
`ns/`, `./`, `*/` and wildcards) and VirtualServices bound to them by every spelling of a
gateway reference, with `match.gateways` and `exportTo`. Whatever the input, it is refused as
input (exit 2) or every gateway proxy gets a plan whose route tables Envoy would accept (one
vhost per domain), and a browser's request is traced, judged and explained without a crash."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import event, given
from hypothesis import strategies as st

from meshlab.backends.embedded.envoy.bootstrap import placeholder_addresses, render_bootstrap
from meshlab.errors import EXIT_INPUT, MeshlabError
from meshlab.load.manifests import load_manifests
from meshlab.mesh.expect import configured_split
from meshlab.mesh.gateway_plan import build_gateway_plan, gateway_refusal
from meshlab.mesh.gateways import provided_gateways
from meshlab.mesh.request import Origin, ProbeRequest
from meshlab.mesh.trace import trace_request

WEBAPP = Path(__file__).parents[1] / "data" / "gateways" / "webapp.yaml"
NAMESPACES = ["default", "other", "istio-system"]
SERVER_HOSTS = [
    "*",
    "fleetman.com",
    "*.fleetman.com",
    "Experimental.fleetman.com",
    "./fleetman.com",
    "default/*",
    "other/*.fleetman.com",
    "*/fleetman.com",
    "*/*",
]
VS_HOSTS = ["*", "fleetman.com", "*.fleetman.com", "experimental.fleetman.com", "fleetman-webapp"]
SUBSETS = st.lists(st.sampled_from(["original", "experimental", "missing"]), min_size=1, max_size=2)
REFERENCES = ["gw0", "gw1", "default/gw0", "other/gw1", "./gw0", "gw0.default.svc.cluster.local"]
BINDINGS = st.lists(st.sampled_from([*REFERENCES, "mesh"]), min_size=1, max_size=2)
SELECTORS = [{"istio": "ingressgateway"}, {"istio": "egressgateway"}, {}, {"istio": "nope"}]
URLS = [
    "http://fleetman.com/",
    "http://experimental.fleetman.com/canary",
    "http://FLEETMAN.com:31380/x",
    "http://other.example/",
    "http://fleetman.com:8080/",
]


def gateway(draw: st.DrawFn, index: int) -> dict[str, Any]:
    servers = []
    for i in range(draw(st.integers(1, 3))):
        protocol = draw(st.sampled_from(["HTTP", "HTTP2", "GRPC", "TCP", "HTTPS"]))
        server: dict[str, Any] = {
            "port": {
                "number": draw(st.sampled_from([80, 8080, 443, 31400])),
                "name": f"p{i}",
                "protocol": protocol,
            },
            "hosts": draw(st.lists(st.sampled_from(SERVER_HOSTS), min_size=1, max_size=3)),
        }
        if protocol == "HTTPS":
            server["tls"] = {"mode": "SIMPLE", "credentialName": "cert"}
        servers.append(server)
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": f"gw{index}", "namespace": draw(st.sampled_from(NAMESPACES[:2]))},
        "spec": {"selector": draw(st.sampled_from(SELECTORS)), "servers": servers},
    }


def virtual_service(draw: st.DrawFn, index: int) -> dict[str, Any]:
    gateways = draw(BINDINGS)
    http = []
    for _ in range(draw(st.integers(1, 3))):
        rule: dict[str, Any] = {
            "route": [
                {"destination": {"host": "fleetman-webapp", "subset": subset}}
                for subset in draw(SUBSETS)
            ]
        }
        if len(rule["route"]) > 1:
            for destination in rule["route"]:
                destination["weight"] = draw(st.integers(0, 100))
        if draw(st.booleans()):
            match: dict[str, Any] = {"uri": {"prefix": draw(st.sampled_from(["/", "/canary"]))}}
            if draw(st.booleans()):
                match["gateways"] = draw(BINDINGS)
            rule["match"] = [match]
        http.append(rule)
    spec: dict[str, Any] = {
        "hosts": draw(st.lists(st.sampled_from(VS_HOSTS), min_size=1, max_size=3, unique=True)),
        "gateways": gateways,
        "http": http,
    }
    if draw(st.booleans()):
        spec["exportTo"] = [draw(st.sampled_from([".", "*", "istio-system", "other"]))]
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": f"vs{index}", "namespace": draw(st.sampled_from(NAMESPACES[:2]))},
        "spec": spec,
    }


@st.composite
def manifests(draw: st.DrawFn) -> list[dict[str, Any]]:
    docs = [gateway(draw, i) for i in range(draw(st.integers(1, 2)))]
    return docs + [virtual_service(draw, i) for i in range(draw(st.integers(0, 4)))]


@given(docs=manifests())
def test_random_gateways_plan_or_are_refused_as_input(docs: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory(prefix="meshlab-fuzz-") as scratch:
        path = Path(scratch) / "rules.yaml"
        path.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
        refused: MeshlabError | None = None
        try:
            resources = load_manifests([WEBAPP, path], "default")
        except MeshlabError as exc:
            refused = exc
    if refused is not None:
        assert refused.exit_code == EXIT_INPUT, f"{type(refused).__name__}: {refused}"
        event("refused as input")
        return
    for proxy in provided_gateways(resources):
        plan = build_gateway_plan(resources, proxy)
        event(f"vhosts: {sum(len(t) for t in plan.route_tables.values())}")
        config = render_bootstrap(plan, placeholder_addresses(plan))
        assert len(config["static_resources"]["listeners"]) == len(plan.listeners)
        for table in plan.route_tables.values():
            domains = [d for vhost in table for d in vhost.domains]
            assert len(domains) == len(set(domains)), f"Envoy refuses repeated domains: {domains}"
            assert all(d == d.lower() for d in domains)
        for url in URLS:
            request = ProbeRequest(url, origin=Origin("browser"))
            trace = trace_request(plan, request)
            refusal = gateway_refusal(plan, request.host, request.port)
            if refusal is not None:
                assert trace.problem == refusal
                assert trace.route is None
            configured_split(plan, request, "version")
