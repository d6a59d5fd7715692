"""ServiceEntry hosts (mesh/external.py): a Service per MESH_EXTERNAL host whose endpoints are
loopback stand-ins, so the rendered Envoy config never names an address off this machine."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from meshlab.backends.embedded.envoy.bootstrap import placeholder_addresses, render_mesh
from meshlab.backends.embedded.standins import behaviour_for
from meshlab.backends.embedded.standins.server import PodSpec, Request
from meshlab.load.manifests import Resource, load_manifests
from meshlab.mesh.external import external_hosts
from meshlab.mesh.plan import build_plan
from meshlab.mesh.proxies import build_proxies
from staff_rules import mesh_config

DATA = Path(__file__).resolve().parents[1] / "data" / "external"


def resources() -> list[Resource]:
    return load_manifests([DATA / "app.yaml", DATA / "entries.yaml"], "default")


def addresses_in(node: Any) -> Iterator[str]:
    """Every `address` (socket or DNS target) anywhere in an Envoy config."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("address", "hostname_address") and isinstance(value, str):
                yield value
            yield from addresses_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from addresses_in(item)


def test_no_address_off_this_machine_in_the_rendered_mesh() -> None:
    res = resources()
    plan = build_plan(res, "default")
    config = render_mesh(build_proxies(res, plan), placeholder_addresses(plan))
    found = set(addresses_in(config))
    assert "127.0.0.1" in found
    for address in found:
        assert ipaddress.ip_address(address) in ipaddress.ip_network("127.0.0.0/8"), address
    text = json.dumps(config)
    for public in ("8.8.8.8", "1.1.1.1", "203.0.113.7"):
        assert public not in text
    assert '"LOGICAL_DNS"' not in text
    assert '"STRICT_DNS"' not in text


def test_each_host_is_a_cluster_and_a_vhost_as_istiod_names_them() -> None:
    plan = build_plan(resources(), "default")
    assert "outbound|80||api.example.com" in plan.clusters
    assert "outbound|443||api.example.com" in plan.clusters
    static = plan.clusters["outbound|80||static.example.org"]
    assert len(static.endpoints) == 2  # one stand-in per STATIC address written
    domains = {d for v in plan.route_tables["80"] for d in v.domains}
    assert {"api.example.com", "google.com", "www.google.com"} <= domains
    assert not any(d.startswith("api.example.com.default") for d in domains)
    # HTTPS and TCP ports are TCP listeners (no HTTP routing), as the sidecar's are
    tcp = {lst.name for lst in plan.listeners if lst.protocol == "TCP"}
    assert {"api.example.com_443", "static.example.org_5432"} <= tcp


def test_a_virtual_service_for_an_external_host_routes_to_another_one() -> None:
    plan = build_plan(resources(), "default")
    vhost = next(v for v in plan.route_tables["80"] if "www.google.com" in v.domains)
    route = vhost.routes[0]
    assert route.timeout_s == 3.0
    assert [t.cluster for t in route.action.targets] == ["outbound|80||google.com"]  # type: ignore[union-attr]


def test_written_addresses_are_noted_as_replaced() -> None:
    plan = build_plan(resources(), "default")
    notes = [n.message for n in plan.notes]
    assert any("8.8.8.8, 1.1.1.1" in n and "loopback stand-ins" in n for n in notes), notes
    assert not any("ServiceEntry is not simulated" in n for n in notes)


def test_export_to_hides_the_host_from_other_namespaces() -> None:
    text = (
        (DATA / "entries.yaml")
        .read_text()
        .replace("  hosts: [api.example.com]", "  hosts: [api.example.com]\n  exportTo: ['.']")
    )
    path = DATA.parent / "external-export.yaml"
    res = load_manifests_text(text, path)
    assert "outbound|80||api.example.com" in build_plan(res, "default").clusters
    assert "outbound|80||api.example.com" not in build_plan(res, "other").clusters


def load_manifests_text(text: str, path: Path) -> list[Resource]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / path.name
        file.write_text(text)
        return load_manifests([file], "default")


def test_wildcard_none_and_internal_entries_are_noted_not_simulated() -> None:
    text = """
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: wild}
spec:
  hosts: ["*.example.com"]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: none}
spec:
  hosts: [none.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
"""
    res = load_manifests_text(text, Path("x.yaml"))
    found = external_hosts(res)
    assert found.hosts == []
    assert [w for _, w in found.skipped] == ["wildcard host *.example.com", "resolution NONE"]
    notes = [n.message for n in build_plan(res, "default").notes]
    assert any("resolution NONE is not simulated" in n for n in notes), notes


def test_the_external_stand_in_says_which_host_it_plays() -> None:
    behaviour = behaviour_for("meshlab/external:api.example.com")
    pod = PodSpec(
        "external-api-example-com-0", "default", "meshlab/external:api.example.com", {}, (80,)
    )
    reply = behaviour.handle(Request(pod, 80, "GET", "/x", (("host", "api.example.com"),)))
    assert reply.status == 200
    assert json.loads(reply.body)["answer"] == "external api.example.com"


def catch_all(extra: str) -> tuple[str, list[str]]:
    res = [r for r in load_manifests_text(extra, Path("mesh.yaml")) + resources() if r.simulated]
    plan = build_plan(res, "default")
    return plan.route_tables["80"][-1].name, [n.message for n in plan.notes]


def test_the_mesh_config_map_sets_the_outbound_policy() -> None:
    assert catch_all(mesh_config("rootNamespace: istio-system"))[0] == "allow_any"
    blocked = mesh_config("outboundTrafficPolicy: {mode: REGISTRY_ONLY}")
    assert catch_all(blocked)[0] == "block_all"
    # a Sidecar's own policy wins over the mesh's (sidecar.go convertToSidecarScope)
    sidecar = """
---
apiVersion: networking.istio.io/v1beta1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  outboundTrafficPolicy: {mode: ALLOW_ANY}
"""
    assert catch_all(blocked + sidecar)[0] == "allow_any"


def test_a_broken_mesh_config_is_noted_and_the_default_kept() -> None:
    name, notes = catch_all(mesh_config("outboundTrafficPolicy: {mode: NONE}"))
    assert name == "allow_any"
    assert any("'NONE' is neither ALLOW_ANY nor REGISTRY_ONLY" in n for n in notes), notes
    name, notes = catch_all(mesh_config("[unclosed"))
    assert name == "allow_any"
    assert any("`mesh` is not valid YAML" in n for n in notes), notes
