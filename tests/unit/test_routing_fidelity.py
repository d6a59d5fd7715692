"""Istio's routing corner cases in the plan, without Envoy: which VirtualService takes a
host, which names a vhost answers, which DestinationRule a client gets, which hash a route
carries. The scenarios of tests/data/mesh run on Envoy in tests/integration."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from meshlab.load.manifests import load_manifests
from meshlab.mesh.expect import configured_split
from meshlab.mesh.matching import virtual_host_for
from meshlab.mesh.model import Forward, HashPolicyPlan, MeshPlan, VirtualHostPlan
from meshlab.mesh.names import CLIENT_LABELS
from meshlab.mesh.plan import build_plan
from meshlab.mesh.request import ProbeRequest
from meshlab.mesh.routes import routing_claim
from meshlab.mesh.trace import trace_request

DATA = Path(__file__).resolve().parents[1] / "data" / "mesh"
APPS = DATA / "apps.yaml"
STAFF = "fleetman-staff-service.default.svc.cluster.local"
PATH = "/driver/City%20Truck"


def plan_of(tmp_path: Path, *docs: str, scenario: str | None = None) -> MeshPlan:
    paths = [APPS] + ([DATA / scenario] if scenario else [])
    for i, doc in enumerate(docs):
        path = tmp_path / f"extra-{i}.yaml"
        path.write_text(textwrap.dedent(doc), encoding="utf-8")
        paths.append(path)
    return build_plan(load_manifests(paths, "default"), "default")


def vhost(plan: MeshPlan, host: str, port: int = 8080) -> VirtualHostPlan:
    found = virtual_host_for(plan, host, port)
    assert found is not None, f"no vhost answers {host}:{port}"
    return found


def subsets(plan: MeshPlan, host: str = "fleetman-staff-service", port: int = 8080) -> set[str]:
    route = vhost(plan, host, port).routes[0]
    assert isinstance(route.action, Forward)
    return {t.subset or "" for t in route.action.targets}


def vs(name: str, hosts: str, subset: str, meta: str = "", extra: str = "") -> str:
    """A VirtualService; `meta` and `extra` are lines (indented by two) of its metadata and
    spec."""
    return (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
        f"metadata:\n  name: {name}\n{meta}spec:\n  hosts: {hosts}\n{extra}  http:\n"
        "  - route:\n    - destination: {host: fleetman-staff-service.default.svc.cluster.local,"
        f" subset: {subset}}}\n"
    )


# --- which VirtualService takes a host ----------------------------------------------------


def test_an_exact_host_beats_an_older_wildcard() -> None:
    plan = build_plan(load_manifests([APPS, DATA / "exact-beats-wildcard.yaml"]))
    assert subsets(plan) == {"safe"}


def test_the_longest_wildcard_takes_a_host_without_an_exact_one(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        vs(
            "short", '["*.cluster.local"]', "risky", '  creationTimestamp: "2020-01-01T00:00:00Z"\n'
        ),
        vs("long", '["*.default.svc.cluster.local"]', "safe"),
    )
    assert subsets(plan) == {"safe"}
    assert vhost(plan, "fleetman-staff-service").virtual_service.name == "long"  # type: ignore[union-attr]


def test_an_exact_rule_without_routes_for_the_port_leaves_the_default(tmp_path: Path) -> None:
    """Istio never falls back to a wildcard VirtualService for a host named exactly."""
    exact = """
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata:
      name: exact
    spec:
      hosts: [fleetman-staff-service]
      http:
      - match: [{port: 9999}]
        route:
        - destination: {host: fleetman-staff-service, subset: risky}
    """
    plan = plan_of(tmp_path, exact, vs("wild", '["*.default.svc.cluster.local"]', "safe"))
    [route] = vhost(plan, "fleetman-staff-service").routes
    assert route.name == "default"


@pytest.mark.parametrize(
    ("export_to", "winner"),
    [
        ('["."]', "newer"),  # private to the client's namespace
        ("[default]", "newer"),  # its own namespace named: private too
        ('["*"]', "older"),  # both public: the older wins
    ],
)
def test_private_rules_come_first(tmp_path: Path, export_to: str, winner: str) -> None:
    plan = plan_of(
        tmp_path,
        vs(
            "older",
            "[fleetman-staff-service]",
            "risky",
            '  creationTimestamp: "2020-01-01T00:00:00Z"\n',
        ),
        vs(
            "newer",
            "[fleetman-staff-service]",
            "safe",
            '  creationTimestamp: "2021-01-01T00:00:00Z"\n',
            f"  exportTo: {export_to}\n",
        ),
    )
    assert vhost(plan, "fleetman-staff-service").virtual_service.name == winner  # type: ignore[union-attr]


def test_a_rule_exported_by_name_beats_an_older_public_one() -> None:
    plan = build_plan(load_manifests([APPS, DATA / "exported-tier.yaml"]))
    owner = vhost(plan, "fleetman-staff-service").virtual_service
    assert owner is not None
    assert owner.ref == "VirtualService staff-team/exported-safe"


# --- names the vhosts answer --------------------------------------------------------------


def test_vs_hosts_that_are_no_service_get_port_80_and_take_their_domain() -> None:
    plan = build_plan(load_manifests([APPS, DATA / "foreign-host.yaml"]))
    own = vhost(plan, "staff.example.com", 80)
    assert (own.name, own.domains, own.service) == (
        "staff.example.com:80",
        ["staff.example.com"],
        None,
    )
    taken = vhost(plan, "fleetman-staff-front.default", 80)
    assert taken.virtual_service is not None
    assert taken.service is None
    front = vhost(plan, "fleetman-staff-front", 80)
    assert "fleetman-staff-front.default" not in front.domains  # no duplicate for Envoy
    assert virtual_host_for(plan, "staff.example.com", 8080).name == "allow_any"  # type: ignore[union-attr]
    split = configured_split(plan, ProbeRequest(f"http://staff.example.com{PATH}"), "version")
    assert split.shares == {"risky": 1.0}


def test_a_vs_naming_a_service_on_another_port_leaks_its_host_to_port_80(tmp_path: Path) -> None:
    """istio/istio#22621: on the port-80 route table, every host of a VirtualService that
    is no Service *on port 80* gets a vhost, the Service hosts of other ports included."""
    webapp = """
    apiVersion: v1
    kind: Service
    metadata: {name: web}
    spec:
      selector: {app: staff-service}
      ports: [{name: http, port: 80, targetPort: 8080}]
    """
    plan = plan_of(tmp_path, webapp, vs("staff", "[fleetman-staff-service]", "safe"))
    leaked = vhost(plan, STAFF, 80)
    assert (leaked.name, leaked.domains) == (f"{STAFF}:80", [STAFF])
    # the short name is still no name on port 80
    assert virtual_host_for(plan, "fleetman-staff-service", 80).name == "allow_any"  # type: ignore[union-attr]


def test_externalname_chains_alias_the_concrete_service(tmp_path: Path) -> None:
    chain = """
    apiVersion: v1
    kind: Service
    metadata: {name: hop-1}
    spec: {type: ExternalName, externalName: hop-2.default.svc.cluster.local}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: hop-2}
    spec: {type: ExternalName, externalName: fleetman-staff-service.default.svc.cluster.local}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: loop-a}
    spec: {type: ExternalName, externalName: loop-b.default.svc.cluster.local}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: loop-b}
    spec: {type: ExternalName, externalName: loop-a.default.svc.cluster.local}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: outside}
    spec: {type: ExternalName, externalName: api.example.com}
    """
    plan = plan_of(tmp_path, chain)
    staff = vhost(plan, "fleetman-staff-service")
    assert staff.service is not None
    assert staff.service.aliases == [
        ("hop-1", "default"),
        ("hop-2", "default"),
    ]
    for name in ("hop-1", "hop-2.default.svc.cluster.local"):
        assert vhost(plan, name) is staff
    for name in ("loop-a", "outside"):  # a loop, and a name outside the lab: no vhost
        assert virtual_host_for(plan, name, 8080).name == "allow_any"  # type: ignore[union-attr]


def test_an_alias_with_the_port_can_be_a_vs_host_and_a_destination() -> None:
    plan = build_plan(load_manifests([APPS, DATA / "service-aliases.yaml"]))
    canary = vhost(plan, "staff-canary")
    assert canary.name == "staff-canary.default.svc.cluster.local:8080"
    assert "staff-canary" not in vhost(plan, "fleetman-staff-service").domains
    [route] = canary.routes
    assert isinstance(route.action, Forward)
    assert [t.cluster for t in route.action.targets] == [f"outbound|8080|risky|{STAFF}"]
    assert not any("staff-canary" in name or "staff-alias" in name for name in plan.clusters)


def test_a_headless_service_answers_every_subdomain_of_its_names() -> None:
    plan = build_plan(load_manifests([APPS, DATA / "service-aliases.yaml"]))
    pods = vhost(plan, "staff-pods")
    assert "*.staff-pods.default.svc.cluster.local" in pods.domains
    assert vhost(plan, "web-0.staff-pods.default.svc.cluster.local") is pods
    assert not any(d.startswith("*") for d in vhost(plan, "fleetman-staff-service").domains)


@pytest.mark.parametrize(
    ("annotation", "visible"),
    [
        ("default", True),
        (".", True),
        ("*", True),
        ("other", False),
        ("~", False),
        ("other, default", True),
    ],
)
def test_the_export_to_annotation_decides_who_sees_a_service(
    tmp_path: Path, annotation: str, visible: bool
) -> None:
    service = f"""
    apiVersion: v1
    kind: Service
    metadata:
      name: hidden
      annotations: {{networking.istio.io/exportTo: "{annotation}"}}
    spec:
      selector: {{app: staff-service}}
      ports: [{{name: http, port: 8080}}]
    """
    plan = plan_of(tmp_path, service)
    fqdn = "hidden.default.svc.cluster.local"
    assert (virtual_host_for(plan, "hidden", 8080).service is not None) is visible  # type: ignore[union-attr]
    assert (f"outbound|8080||{fqdn}" in plan.clusters) is visible
    assert any(s.name == "hidden" for s in plan.registry.services)  # its pods still run


# --- which DestinationRule the client gets ------------------------------------------------


def dr(name: str, selector: str | None, subset_version: str, extra: str = "") -> str:
    sel = f"  workloadSelector: {{matchLabels: {selector}}}\n    " if selector else ""
    return f"""
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata:
      name: {name}
    spec:
      host: fleetman-staff-service
    {sel}  subsets:
      - {{name: chosen, labels: {{version: {subset_version}}}}}
    {extra}"""


def test_the_client_labels_are_the_kind_probe_pods() -> None:
    """Both backends' clients carry the labels the plan decides with."""
    from meshlab.backends.kind.probe import PROBE_LABEL, probe_objects

    assert dict(CLIENT_LABELS) == {PROBE_LABEL: "true"}
    [pod] = [o for o in probe_objects("ns") if o["kind"] == "Pod"]
    assert pod["metadata"]["labels"] == dict(CLIENT_LABELS)


def test_a_selector_rule_for_the_client_wins(tmp_path: Path) -> None:
    plan = build_plan(load_manifests([APPS, DATA / "workload-selector.yaml"]))
    chosen = plan.clusters[f"outbound|8080|chosen|{STAFF}"]
    assert {e.pod.labels["version"] for e in chosen.endpoints} == {"safe"}
    assert chosen.destination_rule is not None
    assert chosen.destination_rule.name == "for-the-probe"
    assert f"outbound|8080|risky|{STAFF}" in plan.clusters  # merged from the rule without one


def test_rules_only_for_other_clients_give_no_rule_at_all(tmp_path: Path) -> None:
    """sidecar.go DestinationRule: no catch-all in the namespace, no rule (no fallback)."""
    plan = plan_of(tmp_path, dr("webapp-only", "{app: webapp}", "risky"))
    assert not any(c.subset for c in plan.clusters.values())


def test_a_selector_rule_is_private_to_its_namespace(tmp_path: Path) -> None:
    elsewhere = (
        dr("elsewhere", '{"meshlab.io/probe": "true"}', "risky")
        .replace("name: elsewhere", "name: elsewhere\n      namespace: default-2")
        .replace(
            "host: fleetman-staff-service", "host: fleetman-staff-service.default.svc.cluster.local"
        )
    )
    plan = plan_of(tmp_path, elsewhere)
    assert not any(c.subset for c in plan.clusters.values())


# --- hashes and load balancers ------------------------------------------------------------


def test_every_weighted_destination_brings_its_hash() -> None:
    plan = build_plan(load_manifests([APPS, DATA / "weighted-hash.yaml"]))
    [route] = vhost(plan, "fleetman-staff-service").routes
    assert route.hash_policies == (
        HashPolicyPlan("header", "x-user"),
        HashPolicyPlan("query_parameter", "user"),
    )
    assert route.retry is not None
    assert route.retry.previous_hosts


def test_port_level_settings_replace_the_rule_on_their_port(tmp_path: Path) -> None:
    rule = """
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: staff}
    spec:
      host: fleetman-staff-service
      trafficPolicy:
        loadBalancer: {simple: RANDOM}
        portLevelSettings:
        - port: {number: 8080}
          tls: {mode: SIMPLE}
      subsets:
      - {name: safe, labels: {version: safe}}
      - name: risky
        labels: {version: risky}
        trafficPolicy:
          portLevelSettings:
          - port: {number: 8080}
            loadBalancer: {simple: ROUND_ROBIN}
    """
    plan = plan_of(tmp_path, rule)
    # the port's settings name no loadBalancer: the default, not the rule's RANDOM
    assert plan.clusters[f"outbound|8080||{STAFF}"].lb_policy == "LEAST_REQUEST"
    assert plan.clusters[f"outbound|8080|safe|{STAFF}"].lb_policy == "LEAST_REQUEST"
    assert plan.clusters[f"outbound|8080|risky|{STAFF}"].lb_policy == "ROUND_ROBIN"
    # its tls (SIMPLE: TLS origination) is not simulated; ISTIO_MUTUAL and DISABLE are
    assert any("portLevelSettings" in n.message for n in plan.notes)


def test_the_route_hashes_on_port_settings_only_when_it_names_the_port() -> None:
    plan = build_plan(load_manifests([APPS, DATA / "port-level.yaml"]))
    [route] = vhost(plan, "fleetman-staff-service").routes
    assert route.hash_policies == (HashPolicyPlan("header", "x-user"),)
    assert route.retry is not None
    assert route.retry.remote_localities
    assert not route.retry.previous_hosts  # a single hashed destination
    [cookie] = vhost(plan, "staff-cookies", 9090).routes
    assert cookie.hash_policy == HashPolicyPlan(
        "cookie", "user", 60.0, None, (("SameSite", "Strict"), ("Secure", ""))
    )
    assert not any("portLevelSettings" in n.message for n in plan.notes)


def test_without_the_port_the_route_ignores_port_settings(tmp_path: Path) -> None:
    text = (
        (DATA / "port-level.yaml")
        .read_text()
        .replace("        port:\n          number: 8080\n", "")
    )
    plan = plan_of(tmp_path, text)
    [route] = vhost(plan, "fleetman-staff-service").routes
    assert route.hash_policies == ()  # route.go portLevelSettingsConsistentHash
    assert plan.clusters[f"outbound|8080||{STAFF}"].lb_policy == "RING_HASH"


# --- JWT claims ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "claim"),
    [
        ("@request.auth.claims.groups", ("groups",)),
        ("@request.auth.claims.group.id", ("group", "id")),
        ("@request.auth.claims[role][name]", ("role", "name")),
        ("@REQUEST.AUTH.CLAIMS.x", ("x",)),
        ("@request.auth.claims", None),
        ("@request.auth.claims[]", None),
        ("x-claims", None),
    ],
)
def test_routing_claims_are_read_as_istio_reads_them(
    name: str, claim: tuple[str, ...] | None
) -> None:
    assert routing_claim(name) == claim


def test_a_claim_match_never_holds_at_the_client() -> None:
    plan = build_plan(load_manifests([APPS, DATA / "jwt-claims.yaml"]))
    request = ProbeRequest(f"http://fleetman-staff-service:8080{PATH}")
    trace = trace_request(plan, request)
    assert trace.route is not None
    assert trace.route.name == "not-testers"
    [skipped] = trace.skipped
    assert "JWT claim groups is never present" in skipped.reason
    assert configured_split(plan, request, "version").shares == {"safe": 1.0}
