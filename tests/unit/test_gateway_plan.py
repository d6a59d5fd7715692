"""The ingress gateway's configuration as istiod builds it (mesh/gateway_plan.py): listeners
per server port, `http.<port>` route tables, a vhost per host a server and a VirtualService
share, VirtualServices merged per host; golden configs of the course's three 3-Gateways
variants, each accepted by `envoy --mode validate`.

Regenerate the golden files after an intended change with
`MESHLAB_UPDATE_GOLDEN=1 pytest tests/unit/test_gateway_plan.py` and review the diff."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from meshlab.analysis import analyze_paths
from meshlab.backends.embedded.envoy.binary import EnvoyBinary, find_envoy
from meshlab.backends.embedded.envoy.bootstrap import placeholder_addresses, render_bootstrap
from meshlab.backends.embedded.envoy.process import validate_bootstrap
from meshlab.errors import BackendUnavailable
from meshlab.load.manifests import Resource, load_manifests
from meshlab.mesh.expect import configured_split
from meshlab.mesh.gateway_plan import (
    build_gateway_plan,
    gateway_accepts,
    gateway_refusal,
    host_intersection,
)
from meshlab.mesh.gateways import (
    INGRESS,
    INSTALL_GATEWAYS,
    ProvidedGateway,
    find_gateway,
    provided_gateways,
)
from meshlab.mesh.model import Forward, MeshPlan, VirtualHostPlan
from meshlab.mesh.plan import build_plan
from meshlab.mesh.request import Origin, ProbeRequest
from meshlab.mesh.trace import trace_request

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "gateways"
WEBAPP = DATA / "webapp.yaml"
GOLDEN = ROOT / "tests" / "golden"
UPDATE = os.environ.get("MESHLAB_UPDATE_GOLDEN") == "1"
VARIANTS = ("ending", "prefix", "subdomain")
FQDN = "fleetman-webapp.default.svc.cluster.local"
ORIGINAL = f"outbound|80|original|{FQDN}"
EXPERIMENTAL = f"outbound|80|experimental|{FQDN}"
BROWSER = Origin("browser")

GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: {name}
  namespace: {namespace}
spec:
  selector: {selector}
  servers:
  - port: {{number: {port}, name: http-{port}, protocol: {protocol}}}
    hosts: {hosts}
"""


def gateway_doc(
    hosts: str = '["*"]',
    name: str = "ingress-gateway-configuration",
    namespace: str = "default",
    selector: str = "{istio: ingressgateway}",
    port: int = 80,
    protocol: str = "HTTP",
) -> str:
    return GATEWAY.format(
        name=name,
        namespace=namespace,
        selector=selector,
        port=port,
        protocol=protocol,
        hosts=hosts,
    )


def vs_doc(
    hosts: str,
    http: str,
    name: str = "webapp",
    gateways: str = "[ingress-gateway-configuration]",
    meta: str = "",
    export_to: str = "[]",
) -> str:
    """A VirtualService; `http` is the YAML list of rules, indented by two spaces."""
    return (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n"
        f"  name: {name}\n{meta}spec:\n  hosts: {hosts}\n  gateways: {gateways}\n"
        f"  exportTo: {export_to}\n  http:\n" + textwrap.indent(textwrap.dedent(http), "  ")
    )


def to(subset: str, prefix: str | None = None) -> str:
    """One http rule to a webapp subset, for a uri prefix if given."""
    rule = f"- route:\n  - destination: {{host: fleetman-webapp, subset: {subset}}}\n"
    return rule + (f"  match:\n  - uri: {{prefix: {prefix}}}\n" if prefix else "")


def load(tmp_path: Path, *docs: str) -> list[Resource]:
    paths = [WEBAPP]
    for i, doc in enumerate(docs):
        path = tmp_path / f"extra-{i}.yaml"
        path.write_text(textwrap.dedent(doc), encoding="utf-8")
        paths.append(path)
    return load_manifests(paths, "default")


def ingress(resources: list[Resource]) -> ProvidedGateway:
    found = find_gateway(provided_gateways(resources), INGRESS)
    assert found is not None
    return found


def plan_of(tmp_path: Path, *docs: str) -> MeshPlan:
    resources = load(tmp_path, *docs)
    return build_gateway_plan(resources, ingress(resources))


def variant(name: str) -> MeshPlan:
    resources = load_manifests([WEBAPP, DATA / f"{name}.yaml"], "default")
    return build_gateway_plan(resources, ingress(resources))


def vhosts(plan: MeshPlan, table: str = "http.8080") -> dict[str, VirtualHostPlan]:
    return {v.name: v for v in plan.route_tables[table]}


def clusters_of(vhost: VirtualHostPlan) -> list[list[str]]:
    out = []
    for route in vhost.routes:
        assert isinstance(route.action, Forward)
        out.append([t.cluster for t in route.action.targets])
    return out


def browse(plan: MeshPlan, url: str) -> str:
    """Where a browser's request goes through the gateway: the cluster, or the problem."""
    trace = trace_request(plan, ProbeRequest(url, origin=BROWSER))
    if trace.problem is not None:
        return trace.problem
    return ",".join(t.target.cluster for t in trace.targets)


# --- which gateway proxies a lab gets ----------------------------------------------------------


def test_no_gateway_object_means_no_gateway_proxy(tmp_path: Path) -> None:
    assert provided_gateways(load(tmp_path)) == []


def test_the_install_provides_the_gateway_a_gateway_selects(tmp_path: Path) -> None:
    found = provided_gateways(load(tmp_path, gateway_doc()))
    assert [(g.ref, dict(g.labels), g.pod) for g in found] == [
        (
            "istio-system/istio-ingressgateway",
            {"app": "istio-ingressgateway", "istio": "ingressgateway"},
            None,
        )
    ]
    assert found[0].listen_port(80) == 8080
    assert found[0].node_port(80) == 31380


def test_the_egress_gateway_only_when_a_gateway_selects_it(tmp_path: Path) -> None:
    egress = gateway_doc(name="egress", selector="{istio: egressgateway}")
    assert [g.name for g in provided_gateways(load(tmp_path, egress))] == ["istio-egressgateway"]
    # no selector: Istio applies the Gateway to every gateway proxy
    both = provided_gateways(load(tmp_path, gateway_doc(selector="{}")))
    assert [g.name for g in both] == ["istio-ingressgateway", "istio-egressgateway"]


def test_a_selector_nothing_carries_gets_no_gateway_and_istioctl_s_code(tmp_path: Path) -> None:
    resources = load(tmp_path, gateway_doc(selector="{istio: ingress}"))
    assert provided_gateways(resources) == []
    codes = {d.code for d in analyze_paths([WEBAPP, tmp_path / "extra-0.yaml"]).diagnostics}
    assert "IST0101" in codes  # ReferencedResourceNotFound: selector


def test_a_lab_s_own_gateway_workload_replaces_the_install_s(tmp_path: Path) -> None:
    own = """
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: my-gateway, namespace: edge}
    spec:
      selector: {matchLabels: {istio: ingressgateway}}
      template:
        metadata: {labels: {istio: ingressgateway}}
        spec:
          containers: [{name: istio-proxy, image: docker.io/istio/proxyv2:1.15.0}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: my-gateway, namespace: edge}
    spec:
      selector: {istio: ingressgateway}
      ports: [{name: http, port: 80, targetPort: 8081}]
    """
    found = provided_gateways(load(tmp_path, own, gateway_doc()))
    assert [g.ref for g in found] == ["edge/my-gateway"]
    assert found[0].pod is not None
    assert found[0].listen_port(80) == 8081
    plan = build_gateway_plan(load(tmp_path, own, gateway_doc()), found[0])
    assert plan.client_namespace == "edge"
    assert [lst.name for lst in plan.listeners] == ["0.0.0.0_8081"]


# --- listeners and route tables ----------------------------------------------------------------


def test_listener_and_route_table_are_named_as_istio_names_them() -> None:
    plan = variant("ending")
    (listener,) = plan.listeners
    assert (listener.name, listener.route_table, listener.port, listener.bind_port) == (
        "0.0.0.0_8080",
        "http.8080",
        80,
        8080,
    )
    assert plan.listener_for(80) is listener
    assert plan.listener_for(31380) is listener
    assert plan.client_namespace == "istio-system"
    assert plan.gateway is not None
    assert plan.gateway.proxy == "istio-system/istio-ingressgateway"


def test_servers_of_two_gateways_on_one_port_share_the_route_table(tmp_path: Path) -> None:
    other = gateway_doc('["api.fleetman.com"]', name="second")
    plan = plan_of(
        tmp_path,
        gateway_doc('["fleetman.com"]'),
        other,
        vs_doc('["fleetman.com"]', to("original")),
        vs_doc('["api.fleetman.com"]', to("experimental"), name="api", gateways="[second]"),
    )
    assert [lst.route_table for lst in plan.listeners] == ["http.8080"]
    assert sorted(vhosts(plan)) == ["api.fleetman.com:80", "fleetman.com:80"]


def test_a_non_http_server_is_noted_not_served(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, gateway_doc(port=31400, protocol="TCP"))
    assert plan.listeners == []
    assert any("TCP server on port 31400 is not simulated" in n.message for n in plan.notes)


# --- hosts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "vs", "expected"),
    [
        (["*"], ["fleetman.com"], ["fleetman.com"]),
        (["fleetman.com"], ["*"], ["fleetman.com"]),
        (["*.fleetman.com"], ["*"], ["*.fleetman.com"]),
        (["*.fleetman.com"], ["a.fleetman.com", "fleetman.com"], ["a.fleetman.com"]),
        (["*.com"], ["*.fleetman.com"], ["*.fleetman.com"]),
        (["fleetman.com"], ["other.com"], []),
    ],
)
def test_hosts_intersect_as_istio_s_names_do(
    server: list[str], vs: list[str], expected: list[str]
) -> None:
    assert host_intersection(server, vs) == expected


def test_a_vs_for_every_host_on_a_server_for_one_gets_that_host(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, gateway_doc('["fleetman.com"]'), vs_doc('["*"]', to("original")))
    assert {n: v.domains for n, v in vhosts(plan).items()} == {"fleetman.com:80": ["fleetman.com"]}


def test_namespaced_server_hosts_admit_only_that_namespace_s_vss(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        gateway_doc('["./fleetman.com", "other/api.fleetman.com", "*/www.fleetman.com"]'),
        vs_doc('["*"]', to("original")),
    )
    # `./` is the Gateway's namespace (default, the VirtualService's too); `*/` is any; the
    # two hosts share the very same routes, so they collapse into the longer name's vhost
    assert {n: v.domains for n, v in vhosts(plan).items()} == {
        "www.fleetman.com:80": ["www.fleetman.com", "fleetman.com"]
    }


def test_a_vs_private_to_its_namespace_is_not_seen_by_the_gateway(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        gateway_doc(),
        vs_doc('["*"]', to("original"), export_to="[.]"),
    )
    assert sorted(vhosts(plan)) == ["blackhole:80"]  # the gateway runs in istio-system


# --- which VirtualServices bind, and how they merge --------------------------------------------


def test_gateway_references_resolve_in_the_vs_namespace(tmp_path: Path) -> None:
    elsewhere = "  namespace: other\n"
    plan = plan_of(
        tmp_path,
        gateway_doc('["a.com", "b.com", "c.com"]'),
        vs_doc('["a.com"]', to("original"), name="short"),
        vs_doc(
            '["b.com"]',
            to("original"),
            name="full",
            gateways="[default/ingress-gateway-configuration]",
            meta=elsewhere,
        ),
        vs_doc('["c.com"]', to("original"), name="wrong-ns", meta=elsewhere),
    )
    assert sorted(vhosts(plan)) == ["a.com:80", "b.com:80"]


def test_a_vs_bound_to_an_unknown_gateway_is_ignored_with_istioctl_s_code(tmp_path: Path) -> None:
    docs = (gateway_doc(), vs_doc('["*"]', to("original"), gateways="[no-such-gateway]"))
    plan = plan_of(tmp_path, *docs)
    assert sorted(vhosts(plan)) == ["blackhole:80"]
    assert browse(plan, "http://fleetman.com/") == (
        "no VirtualService bound to default/ingress-gateway-configuration serves host "
        "'fleetman.com': the gateway answers 404 (NR)"
    )
    paths = [WEBAPP, tmp_path / "extra-0.yaml", tmp_path / "extra-1.yaml"]
    messages = [d for d in analyze_paths(paths).diagnostics if d.code == "IST0101"]
    assert messages
    assert "no-such-gateway" in str(messages[0])


def test_match_gateways_filter_rules_per_proxy(tmp_path: Path) -> None:
    http = """\
    - match: [{uri: {prefix: /inside}, gateways: [mesh]}]
      route: [{destination: {host: fleetman-webapp, subset: experimental}}]
    - match: [{uri: {prefix: /outside}, gateways: [ingress-gateway-configuration]}]
      route: [{destination: {host: fleetman-webapp, subset: experimental}}]
    - route: [{destination: {host: fleetman-webapp, subset: original}}]
    """
    docs = (
        gateway_doc(),
        vs_doc('["fleetman-webapp"]', http, gateways="[ingress-gateway-configuration, mesh]"),
    )
    plan = plan_of(tmp_path, *docs)
    paths = [r.match.path.value for v in plan.route_tables["http.8080"] for r in v.routes]
    assert paths == ["/outside", "/"]
    sidecar = build_plan(load(tmp_path, *docs))
    table = {v.name: v for v in sidecar.route_tables["80"]}
    assert [r.match.path.value for r in table[f"{FQDN}:80"].routes] == ["/inside", "/"]


def test_vss_for_one_host_merge_with_catch_alls_last(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        gateway_doc(),
        vs_doc('["*"]', to("original"), name="first"),
        vs_doc('["*"]', to("experimental", "/canary"), name="second"),
    )
    (vhost,) = plan.route_tables["http.8080"]
    assert vhost.name == "*:80"
    assert [r.match.path.value for r in vhost.routes] == ["/canary", "/"]
    assert clusters_of(vhost) == [[EXPERIMENTAL], [ORIGINAL]]
    assert browse(plan, "http://anything.example/canary/x") == EXPERIMENTAL


def test_hosts_with_the_same_routes_collapse_into_one_vhost(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        gateway_doc('["*"]'),
        vs_doc('["b.fleetman.com", "a.fleetman.com", "*.fleetman.com"]', to("original")),
    )
    (vhost,) = plan.route_tables["http.8080"]
    assert vhost.name == "a.fleetman.com:80"
    assert vhost.domains == ["a.fleetman.com", "b.fleetman.com", "*.fleetman.com"]


def test_no_bound_vs_gives_the_blackhole_vhost(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, gateway_doc())
    (vhost,) = plan.route_tables["http.8080"]
    assert (vhost.name, vhost.domains, vhost.routes) == ("blackhole:80", ["*"], [])


# --- clusters ----------------------------------------------------------------------------------


def test_a_rule_selecting_the_gateway_applies_to_it_only(tmp_path: Path) -> None:
    rule = """
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: at-the-gateway, namespace: istio-system}
    spec:
      host: fleetman-webapp.default.svc.cluster.local
      workloadSelector: {matchLabels: {istio: ingressgateway}}
      trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
    """
    plan = plan_of(tmp_path, gateway_doc(), rule)
    assert plan.clusters[f"outbound|80||{FQDN}"].lb_policy == "ROUND_ROBIN"
    sidecar = build_plan(load(tmp_path, gateway_doc(), rule))
    assert sidecar.clusters[f"outbound|80||{FQDN}"].lb_policy == "LEAST_REQUEST"


# --- the course's three variants ---------------------------------------------------------------


def test_ending_splits_every_host_90_10() -> None:
    (vhost,) = variant("ending").route_tables["http.8080"]
    assert (vhost.name, vhost.domains) == ("*:80", ["*"])
    (route,) = vhost.routes
    assert isinstance(route.action, Forward)
    assert [(t.cluster, t.weight) for t in route.action.targets] == [
        (ORIGINAL, 90),
        (EXPERIMENTAL, 10),
    ]


def test_prefix_routes_by_path() -> None:
    plan = variant("prefix")
    assert browse(plan, "http://192.168.49.2:31380/experimental") == EXPERIMENTAL
    assert browse(plan, "http://fleetman.com/canary") == EXPERIMENTAL
    assert browse(plan, "http://fleetman.com/") == ORIGINAL


def test_subdomain_routes_by_host_and_refuses_other_hosts() -> None:
    plan = variant("subdomain")
    assert sorted(vhosts(plan)) == ["experimental.fleetman.com:80", "fleetman.com:80"]
    assert browse(plan, "http://fleetman.com/") == ORIGINAL
    assert browse(plan, "http://experimental.fleetman.com/") == EXPERIMENTAL
    assert gateway_accepts(plan, "Fleetman.com", 80)
    assert not gateway_accepts(plan, "other.com", 80)
    assert browse(plan, "http://other.com/") == (
        "no Gateway server accepts host 'other.com' on port 80 (the servers of "
        "istio-system/istio-ingressgateway accept *.fleetman.com, fleetman.com): the gateway "
        "answers 404 (NR)"
    )
    # a subdomain the server accepts but no VirtualService serves: 404 as well
    assert "no VirtualService bound" in (gateway_refusal(plan, "www.fleetman.com", 80) or "")
    assert "listens on port 8080" in (gateway_refusal(plan, "fleetman.com", 8080) or "")


# --- golden configs ----------------------------------------------------------------------------


def golden_path(name: str) -> Path:
    return GOLDEN / f"gateway-{name}.json"


def dump(plan: MeshPlan) -> str:
    config = render_bootstrap(plan, placeholder_addresses(plan))
    return json.dumps(config, indent=1, sort_keys=True) + "\n"


@pytest.mark.parametrize("name", VARIANTS)
def test_gateway_config_matches_golden(name: str) -> None:
    text = dump(variant(name))
    path = golden_path(name)
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with MESHLAB_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), (
        f"the gateway config for {name} differs from {path.name}; if intended, regenerate "
        "with MESHLAB_UPDATE_GOLDEN=1 and review the diff"
    )


@pytest.fixture(scope="module")
def envoy_binary(request: pytest.FixtureRequest) -> EnvoyBinary:
    try:
        return find_envoy(request.config.getoption("envoy", default=None))
    except BackendUnavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.envoy
@pytest.mark.parametrize("name", VARIANTS)
def test_envoy_accepts_the_gateway_golden_config(name: str, envoy_binary: EnvoyBinary) -> None:
    path = golden_path(name)
    ok, output = validate_bootstrap(envoy_binary, path)
    assert ok, f"envoy --mode validate rejected {path.name}:\n{output}"
    assert "OK" in output


def test_the_configured_split_through_the_gateway() -> None:
    ending = configured_split(
        variant("ending"), ProbeRequest("http://x.com/", origin=BROWSER), "version"
    )
    assert ending.shares == {"original": 0.9, "experimental": 0.1}
    subdomain = variant("subdomain")
    refused = configured_split(
        subdomain, ProbeRequest("http://other.com/", origin=BROWSER), "version"
    )
    assert refused.shares == {"other.com": 1.0}
    assert [(c.effect, c.flags) for c in refused.causes] == [("404 NR (no route)", "NR")]
    assert "no Gateway server accepts host 'other.com'" in refused.causes[0].reason


def test_a_gateway_no_gateway_selects_serves_nothing_and_says_so(tmp_path: Path) -> None:
    resources = load(tmp_path, gateway_doc())
    egress = INSTALL_GATEWAYS[1]
    plan = build_gateway_plan(resources, egress)
    assert (plan.listeners, plan.route_tables) == ([], {})
    assert [n.message for n in plan.notes] == [
        "istio-system/istio-egressgateway: no Gateway selects this gateway: it serves no port"
    ]
    assert "no Gateway server of istio-system/istio-egressgateway listens on port 80" in (
        browse(plan, "http://fleetman.com/")
    )
