"""Istio's Sidecar resource in the plan: which Sidecar a proxy gets (push_context.go
getSidecarScope), what its egress hosts import (sidecar.go hostClassification,
selectServices, SelectVirtualServices) and what that leaves in the proxy's plan."""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path

import pytest

from meshlab.errors import InputError
from meshlab.load.manifests import Resource, load_manifests
from meshlab.mesh.model import DirectResponse, Forward, MeshPlan
from meshlab.mesh.names import CLIENT_LABELS
from meshlab.mesh.plan import build_plan
from meshlab.mesh.registry import build_registry
from meshlab.mesh.sidecar_scope import (
    applicable_sidecar,
    host_imports,
    overlaps,
    select_services,
    select_virtual_services,
    sidecar_scope,
    subset_of,
)

ROOT = Path(__file__).resolve().parents[2]
FLEETMAN = ROOT / "labs" / "2-traffic" / "fleetman.yaml"
WEBAPP = {"app": "webapp"}
GATEWAY = {"app": "api-gateway"}
SVC = ".default.svc.cluster.local"
STAFF = "fleetman-staff-service" + SVC
API = "fleetman-api-gateway" + SVC


def load(tmp_path: Path, *docs: str, app: bool = True) -> list[Resource]:
    paths = [FLEETMAN] if app else []
    for i, doc in enumerate(docs):
        path = tmp_path / f"extra-{i}.yaml"
        path.write_text(textwrap.dedent(doc), encoding="utf-8")
        paths.append(path)
    return load_manifests(paths, "default")


def sidecar(
    name: str,
    namespace: str = "default",
    selector: dict[str, str] | None = None,
    created: str | None = None,
    hosts: tuple[str, ...] = ("./*",),
    extra: str = "",
) -> str:
    lines = [
        "apiVersion: networking.istio.io/v1",
        "kind: Sidecar",
        "metadata:",
        f"  name: {name}",
        f"  namespace: {namespace}",
    ]
    if created:
        lines.append(f"  creationTimestamp: '{created}'")
    lines.append("spec:")
    if selector:
        lines.append("  workloadSelector:")
        lines.append("    labels:")
        lines += [f"      {k}: {v}" for k, v in selector.items()]
    lines.append("  egress:")
    lines.append("  - hosts: [" + ", ".join(f'"{h}"' for h in hosts) + "]")
    return "\n".join(lines) + "\n" + extra + "---\n"


def services_of(plan: MeshPlan, port: int = 8080) -> set[str]:
    table = plan.route_tables.get(str(port), [])
    return {v.service.fqdn for v in table if v.service is not None}


# --- which Sidecar applies -----------------------------------------------------------------

SCOPES = (
    sidecar("ns-wide")
    + sidecar("webapp-new", selector=WEBAPP, created="2026-01-02T00:00:00Z")
    + sidecar("webapp-old", selector=WEBAPP, created="2026-01-01T00:00:00Z")
    + sidecar("root", namespace="istio-system")
    + sidecar("root-selected", namespace="istio-system", selector=WEBAPP)
    + sidecar("only-selected", namespace="other", selector=GATEWAY)
)


@pytest.mark.parametrize(
    ("namespace", "labels", "expected"),
    [
        ("default", WEBAPP, "webapp-old"),  # selector first, oldest first
        ("default", {**WEBAPP, "version": "x"}, "webapp-old"),  # a subset of the labels
        ("default", GATEWAY, "ns-wide"),  # no selector matches: the namespace's own
        ("default", CLIENT_LABELS, "ns-wide"),  # the test client is a proxy like any other
        ("other", GATEWAY, "only-selected"),
        ("other", WEBAPP, "root"),  # nothing in `other` for it: the root namespace's
        ("third", WEBAPP, "root"),  # a root Sidecar with a selector never applies elsewhere
    ],
)
def test_the_sidecar_a_proxy_gets(
    tmp_path: Path, namespace: str, labels: dict[str, str], expected: str
) -> None:
    sidecars = [r for r in load(tmp_path, SCOPES, app=False) if r.kind == "Sidecar"]
    found = applicable_sidecar(sidecars, namespace, labels)
    assert found is not None
    assert found.name == expected


def test_no_sidecar_anywhere_is_istiods_default(tmp_path: Path) -> None:
    resources = load(tmp_path)
    scope = sidecar_scope(resources, build_registry(resources), "default", WEBAPP)
    assert scope.sidecar is None
    assert [e.port for e in scope.egress] == [None]
    assert scope.outbound_mode == "ALLOW_ANY"
    assert len(scope.services) == len(build_registry(resources).services)


# --- host matching -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "other", "subset", "either"),
    [
        ("a.com", "a.com", True, True),
        ("a.com", "*.com", True, True),
        ("*.com", "a.com", False, True),
        ("*.a.com", "*.com", True, True),
        ("*.com", "*.a.com", False, True),
        ("a.com", "*", True, True),
        ("a.com", "b.com", False, False),
        ("a.com", "*.org", False, False),
    ],
)
def test_host_names_cover_as_istio_says(name: str, other: str, subset: bool, either: bool) -> None:
    assert subset_of(name, other) is subset
    assert overlaps(name, other) is either


@pytest.mark.parametrize(
    ("hosts", "namespace", "expected"),
    [
        (["*/*"], "default", {"fleetman-api-gateway", "fleetman-staff-service", "other-svc"}),
        (["./*"], "default", {"fleetman-api-gateway", "fleetman-staff-service"}),
        (["./*"], "other", {"other-svc"}),
        (["other/*"], "default", {"other-svc"}),
        (["istio-system/*"], "default", set()),
        ([f"default/{STAFF}"], "other", {"fleetman-staff-service"}),
        (["default/fleetman-staff-service"], "default", set()),  # a short name is literal
        (["*/*.default.svc.cluster.local"], "other", {API.split(".")[0], STAFF.split(".")[0]}),
        (["./fleetman-staff-*"], "default", set()),  # `*` only leads a name
        (["~/*"], "default", set()),
        (["*/*", "~default/*"], "default", {"other-svc"}),
        (["*/*", f"~/{API}"], "default", {"fleetman-staff-service", "other-svc"}),
    ],
)
def test_egress_hosts_import(
    tmp_path: Path, hosts: list[str], namespace: str, expected: set[str]
) -> None:
    resources = load(tmp_path, OTHER, app=False)
    registry = build_registry(resources)
    found = select_services(registry.services, host_imports(hosts, namespace), None)
    assert {s.name for s in found} == expected


OTHER = """\
apiVersion: v1
kind: Service
metadata: {name: other-svc, namespace: other}
spec:
  selector: {app: other}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: fleetman-staff-service, namespace: default}
spec:
  selector: {app: staff-service}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: fleetman-api-gateway, namespace: default}
spec:
  selector: {app: api-gateway}
  ports: [{name: http, port: 8080}, {name: http-admin, port: 9090}]
"""


@pytest.mark.parametrize(
    ("hosts", "vs_host", "imported"),
    [
        (["./a.com"], "a.com", True),
        (["./a.com"], "*.com", True),  # both ways for VirtualServices (VSMatches)
        (["./*.com"], "a.com", True),
        (["./*.a.com"], "*.com", True),
        (["./a.org"], "*.com", False),
        (["./b.com"], "a.com", False),
        (["*/*"], "anything.example", True),
        (["*/*", "~./a.com"], "a.com", False),  # `~.` is the own namespace, excluded
        (["other/*"], "a.com", False),  # the VirtualService is in `default`
    ],
)
def test_which_virtual_services_an_egress_listener_imports(
    hosts: list[str], vs_host: str, imported: bool
) -> None:
    vs = load_vs(vs_host)
    found = select_virtual_services([vs], host_imports(hosts, "default"))
    assert found == ([vs] if imported else [])


def test_a_huge_host_list_is_indexed_not_scanned() -> None:
    """A hostile Sidecar listing 100,000 hosts: lookups go through the indexes (exact set,
    wildcard suffixes, sorted reversed names), which give the scan's answers."""
    hosts = [f"./svc-{i}.example.com" for i in range(50_000)]
    hosts += [f"./*.zone-{i}.example.com" for i in range(50_000)]
    imports = host_imports(hosts, "default")["default"]
    for i in range(0, 50_000, 97):
        assert imports.matches(f"svc-{i}.example.com")
        assert imports.matches(f"a.zone-{i}.example.com")
        assert not imports.matches(f"a.svc-{i}.example.com")
        assert imports.matches_virtual_service(f"*.zone-{i}.example.com")
    assert imports.matches_virtual_service("*.example.com")
    assert not imports.matches_virtual_service("*.example.org")


def load_vs(host: str) -> Resource:
    """A VirtualService for `host` in `default`, as the loader builds it."""
    doc = textwrap.dedent(
        f"""\
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {{name: vs, namespace: default}}
        spec:
          hosts: ["{host}"]
          http:
          - route: [{{destination: {{host: fleetman-staff-service.default.svc.cluster.local}}}}]
        """
    )
    return parse_one(doc)


def test_an_egress_port_imports_that_port_only(tmp_path: Path) -> None:
    resources = load(tmp_path, OTHER, app=False)
    registry = build_registry(resources)
    (api,) = select_services(registry.services, host_imports([f"./{API}"], "default"), 9090)
    assert [p.number for p in api.ports] == [9090]
    assert select_services(registry.services, host_imports(["./*"], "default"), 7000) == []


# --- what a Sidecar leaves in a proxy's plan ------------------------------------------------

WEBAPP_ONLY_API = sidecar("webapp", selector=WEBAPP, hosts=(f"./{API}",))


def test_a_workloads_sidecar_sees_only_what_it_imports(tmp_path: Path) -> None:
    resources = load(tmp_path, WEBAPP_ONLY_API)
    webapp = build_plan(resources, "default", WEBAPP)
    assert services_of(webapp) == {API}
    assert [v.name for v in webapp.route_tables["8080"]][-1] == "allow_any"
    assert [lst.name for lst in webapp.listeners] == ["0.0.0.0_8080"]  # no port 80
    assert {c.service.fqdn for c in webapp.clusters.values()} == {API}
    # the other proxies keep the whole mesh
    for labels in (GATEWAY, CLIENT_LABELS):
        other = build_plan(resources, "default", labels)
        assert STAFF in services_of(other)
        assert {lst.port for lst in other.listeners} == {80, 8080}


@pytest.mark.parametrize(
    ("policy", "last_vhost"),
    [
        ("", "allow_any"),  # the mesh's default, ALLOW_ANY
        ("  outboundTrafficPolicy:\n    mode: ALLOW_ANY\n", "allow_any"),
        ("  outboundTrafficPolicy:\n    mode: REGISTRY_ONLY\n", "block_all"),
        ("  outboundTrafficPolicy: {}\n", "block_all"),  # sidecar.proto: REGISTRY_ONLY = 0
    ],
)
def test_the_outbound_policy_is_the_last_vhost(
    tmp_path: Path, policy: str, last_vhost: str
) -> None:
    resources = load(tmp_path, sidecar("all", hosts=("./*",), extra=policy))
    last = build_plan(resources, "default", WEBAPP).route_tables["8080"][-1]
    assert last.name == last_vhost
    assert last.domains == ["*"]
    if last_vhost == "block_all":
        assert last.routes[0].action == DirectResponse(502, None)


def test_an_egress_listener_with_a_port_owns_that_port(tmp_path: Path) -> None:
    extra = (
        "  - port: {number: 8080, protocol: HTTP, name: http}\n"
        f'    hosts: ["./{STAFF}"]\n'
        '  - hosts: ["./*"]\n'
    )
    doc = sidecar("ports", hosts=(), extra=extra).replace("  - hosts: []\n", "")
    plan = build_plan(load(tmp_path, doc), "default", WEBAPP)
    assert services_of(plan, 8080) == {STAFF}  # the port's listener, not the catch-all
    assert services_of(plan, 80) == {"fleetman-webapp" + SVC}
    assert {c.service.name for c in plan.clusters.values()} >= {
        "fleetman-staff-service",
        "fleetman-webapp",
        "fleetman-api-gateway",  # CDS is the union of every listener's Services
    }


def test_a_virtual_service_comes_with_the_hosts_that_import_it(tmp_path: Path) -> None:
    gateway_to_staff = """\
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: api, namespace: default}
    spec:
      hosts: [fleetman-api-gateway]
      http:
      - match: [{uri: {prefix: /staff}}]
        route: [{destination: {host: fleetman-staff-service}}]
      - route: [{destination: {host: fleetman-api-gateway}}]
    ---
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: staff, namespace: default}
    spec:
      hosts: [fleetman-staff-service]
      http:
      - fault: {abort: {httpStatus: 500, percentage: {value: 100}}}
        route: [{destination: {host: fleetman-staff-service}}]
    """
    plan = build_plan(load(tmp_path, gateway_to_staff, WEBAPP_ONLY_API), "default", WEBAPP)
    (api,) = [v for v in plan.route_tables["8080"] if v.service is not None]
    assert api.virtual_service is not None
    assert api.virtual_service.name == "api"
    # sidecar.go collectImportedServices: the VirtualService's destination gets a cluster,
    # but no vhost of its own, and the staff VirtualService is not imported.
    assert services_of(plan) == {API}
    assert f"outbound|8080||{STAFF}" in plan.clusters
    action = api.routes[0].action
    assert isinstance(action, Forward)
    assert action.targets[0].host == STAFF


def test_export_to_still_applies_under_a_sidecar(tmp_path: Path) -> None:
    private = OTHER.replace(
        "metadata: {name: other-svc, namespace: other}",
        "metadata:\n  name: other-svc\n  namespace: other\n"
        "  annotations: {networking.istio.io/exportTo: .}",
    )
    resources = load(tmp_path, private, sidecar("all", hosts=("*/*",)), app=False)
    assert "other-svc.other.svc.cluster.local" not in services_of(build_plan(resources))


def test_nothing_imported_means_no_listener_and_no_cluster(tmp_path: Path) -> None:
    plan = build_plan(load(tmp_path, sidecar("none", hosts=("~/*",))), "default", WEBAPP)
    assert plan.listeners == []
    assert plan.clusters == {}
    assert plan.route_tables == {}


def test_what_is_not_simulated_is_said_where_it_is_written(tmp_path: Path) -> None:
    extra = (
        "    captureMode: NONE\n"
        "    bind: 127.0.0.1\n"
        "    port: {number: 9000, protocol: HTTP_PROXY, name: http}\n"
        "  ingress:\n"
        "  - port: {number: 9080, protocol: HTTP, name: http}\n"
        "    defaultEndpoint: 127.0.0.1:8080\n"
        "  inboundConnectionPool:\n"
        "    tcp: {maxConnections: 10}\n"
    )
    resources = load(tmp_path, sidecar("odd", hosts=("./*",), extra=extra))
    notes = build_plan(resources, "default", WEBAPP).notes
    said = {n.message: n.location for n in notes if "Sidecar" in n.message}
    parts = [
        "egress[0].captureMode",
        "egress[0].bind",
        "egress[0].port protocol HTTP_PROXY",
        "ingress",
        "inboundConnectionPool",
    ]
    assert set(said) == {
        f"Sidecar default/odd: {p} is not simulated by the embedded backend" for p in parts
    }
    assert all(loc is not None and loc.path.name == "extra-0.yaml" for loc in said.values())


def parse_one(doc: str) -> Resource:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vs.yaml"
        path.write_text(doc, encoding="utf-8")
        (resource,) = load_manifests([path], "default")
    return resource


@pytest.mark.parametrize(
    ("egress", "said"),
    [
        (
            '  - hosts: ["./*"]\n  - port: {number: 8080, protocol: HTTP, name: http}\n'
            '    hosts: ["./*"]\n',
            "egress[0] has no port: the egress listener without a port must be the last one",
        ),
        (
            '  - port: {number: 8080, protocol: HTTP, name: a}\n    hosts: ["./*"]\n'
            '  - port: {number: 8080, protocol: HTTP, name: b}\n    hosts: ["./*"]\n',
            "egress[1]: port 8080 is already another egress listener's",
        ),
        ('  - hosts: ["~Default/*"]\n', "namespace of egress host 'Default'"),
        ('  - hosts: ["fleetman-staff-service"]\n', "must be namespace/host"),
    ],
)
def test_a_sidecar_istio_would_refuse_is_refused_where_it_is_written(
    tmp_path: Path, egress: str, said: str
) -> None:
    doc = sidecar("bad", hosts=()).replace("  - hosts: []\n", egress)
    with pytest.raises(InputError) as caught:
        load(tmp_path, doc, app=False)
    assert said in str(caught.value)
    assert "extra-0.yaml:" in str(caught.value)
