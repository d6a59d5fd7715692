"""Istio's naming rules (meshlab.mesh.names), one table per rule."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from meshlab.load import istio
from meshlab.mesh import names

NS = "default"
STAFF = "staff.default.svc.cluster.local"


@pytest.mark.parametrize(
    ("host", "namespace", "resolved"),
    [
        ("staff", NS, STAFF),  # short name: the rule's namespace
        ("staff", "other", "staff.other.svc.cluster.local"),
        ("staff.default", NS, "staff.default"),  # dotted: literal, NOT staff.default.svc...
        ("staff.default.svc", NS, "staff.default.svc"),
        (STAFF, "other", STAFF),  # an FQDN stays what it is, from any namespace
        ("*.example.com", NS, "*.example.com"),
        ("*", NS, "*"),
        ("10.0.0.1", NS, "10.0.0.1"),  # IPv4 is dotted, so literal
        ("api.example.com", NS, "api.example.com"),
    ],
)
def test_resolve_host(host: str, namespace: str, resolved: str) -> None:
    assert names.resolve_host(host, namespace) == resolved


def test_service_fqdn_and_domain() -> None:
    assert names.CLUSTER_DOMAIN == "cluster.local"
    assert names.service_fqdn("staff", NS) == STAFF
    assert names.ROOT_NAMESPACE == names.ISTIO_SYSTEM_NAMESPACE == "istio-system"


@pytest.mark.parametrize(
    ("host", "spelled"),
    [
        ("staff.default", ("staff", NS, "")),
        ("staff.default.svc", ("staff", NS, ".svc")),
        (STAFF, ("staff", NS, ".svc.cluster.local")),
        ("*.default.svc.cluster.local", ("*", NS, ".svc.cluster.local")),
        ("staff", None),
        ("api.example.com", None),
        ("staff.default.svc.other.domain", None),
        (".default", None),
        ("staff.", None),
    ],
)
def test_split_service_host(host: str, spelled: tuple[str, str, str] | None) -> None:
    assert names.split_service_host(host) == spelled


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        (STAFF, STAFF, True),
        (STAFF, "staff.other.svc.cluster.local", False),
        ("*.default.svc.cluster.local", STAFF, True),
        ("*.svc.cluster.local", STAFF, True),
        ("*.other.svc.cluster.local", STAFF, False),
        ("*.example.com", "example.com", False),  # a wildcard needs a label in front
        ("*.example.com", "a.b.example.com", True),
        ("*", STAFF, True),
        ("*", "anything", True),
        (STAFF, "*", False),  # one way only
    ],
)
def test_host_matches(pattern: str, host: str, matches: bool) -> None:
    assert names.host_matches(pattern, host) is matches


@pytest.mark.parametrize(
    ("host", "wildcard"), [("*", True), ("*.example.com", True), (STAFF, False), ("staff", False)]
)
def test_is_wildcard(host: str, wildcard: bool) -> None:
    assert names.is_wildcard(host) is wildcard


def test_hosts_overlap_both_ways() -> None:
    assert names.hosts_overlap(STAFF, "*.svc.cluster.local")
    assert names.hosts_overlap("*.svc.cluster.local", STAFF)
    assert not names.hosts_overlap(STAFF, "staff.other.svc.cluster.local")


def test_specificity_orders_exact_then_longer_wildcards_then_star() -> None:
    patterns = ["*", "*.svc.cluster.local", STAFF, "*.default.svc.cluster.local"]
    assert sorted(patterns, key=names.specificity) == [
        STAFF,
        "*.default.svc.cluster.local",
        "*.svc.cluster.local",
        "*",
    ]
    assert names.most_specific(STAFF, patterns) == STAFF
    assert names.most_specific("web.default.svc.cluster.local", patterns) == (
        "*.default.svc.cluster.local"
    )
    assert names.most_specific("api.example.com", patterns) == "*"
    assert names.most_specific("api.example.com", [STAFF]) is None


@pytest.mark.parametrize(
    ("client", "domains"),
    [
        (NS, [STAFF, f"{STAFF}.", "staff", "staff.default.svc", "staff.default"]),
        ("other", [STAFF, f"{STAFF}.", "staff.default.svc", "staff.default"]),  # no bare name
    ],
)
def test_vhost_domains(client: str, domains: list[str]) -> None:
    assert names.vhost_domains("staff", NS, client) == domains


@pytest.mark.parametrize(
    ("export_to", "client", "visible"),
    [
        ([], NS, True),  # unset: everywhere
        ([], "other", True),
        (["*"], "other", True),
        (["."], NS, True),
        (["."], "other", False),
        (["~"], NS, False),  # nowhere, not even its own namespace
        (["other"], "other", True),
        (["other"], NS, False),
        ([".", "other"], NS, True),
        ([".", "other"], "third", False),
    ],
)
def test_export_to(export_to: list[str], client: str, visible: bool) -> None:
    assert names.visible_to(export_to, NS, client) is visible


@pytest.mark.parametrize(
    ("export_to", "scope"),
    [
        ([], {"*"}),
        (["."], {NS}),
        ([".", "other"], {NS, "other"}),
        (["~"], {"~"}),
    ],
)
def test_export_scope(export_to: list[str], scope: set[str]) -> None:
    assert names.export_scope(export_to, NS) == frozenset(scope)


@pytest.mark.parametrize(
    ("entry", "split", "seen_from_default", "seen_from_other"),
    [
        ("*/api.example.com", ("*", "api.example.com"), True, True),
        ("api.example.com", ("*", "api.example.com"), True, True),  # bare = */host
        ("./api.example.com", (".", "api.example.com"), True, False),  # owner is in default
        ("other/*", ("other", "*"), False, True),
        ("~/api.example.com", ("~", "api.example.com"), False, False),
    ],
)
def test_namespaced_hosts(
    entry: str, split: tuple[str, str], seen_from_default: bool, seen_from_other: bool
) -> None:
    assert names.split_namespaced_host(entry) == split
    assert names.namespace_admits(split[0], NS, NS) is seen_from_default
    assert names.namespace_admits(split[0], NS, "other") is seen_from_other


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        ({"app": "staff"}, {"app": "staff", "version": "v1"}, True),
        ({"app": "staff", "version": "v1"}, {"app": "staff", "version": "v1"}, True),
        ({"app": "staff", "version": "v2"}, {"app": "staff", "version": "v1"}, False),
        ({"version": "v1"}, {"app": "staff"}, False),  # missing label
        ({}, {"app": "staff"}, True),  # empty selects everything (a subset without labels)
        ({}, {}, True),
        ({"app": ""}, {}, False),  # an empty value is still a value to have
    ],
)
def test_selects(selector: dict[str, str], labels: dict[str, str], selected: bool) -> None:
    assert names.selects(selector, labels) is selected


@pytest.mark.parametrize(
    ("reference", "key", "legacy"),
    [
        ("mesh", None, False),
        ("gw", (NS, "gw"), False),
        ("./gw", (NS, "gw"), False),
        ("istio-system/gw", ("istio-system", "gw"), False),
        ("gw.istio-system.svc.cluster.local", ("istio-system", "gw"), True),
        ("gw.istio-system", ("istio-system", "gw"), True),
    ],
)
def test_gateway_names(reference: str, key: tuple[str, str] | None, legacy: bool) -> None:
    assert names.gateway_key(reference, NS) == key
    assert names.is_legacy_gateway_name(reference) is legacy


MESH_BINDINGS = [
    ([], True),
    (["mesh"], True),
    (["gw"], False),
    (["istio-system/gw"], False),
    (["gw", "mesh"], True),
]


@pytest.mark.parametrize(("gateways", "bound"), MESH_BINDINGS)
def test_bound_to_mesh(gateways: list[str], bound: bool) -> None:
    assert names.bound_to_mesh(gateways) is bound


@pytest.mark.parametrize(("gateways", "bound"), MESH_BINDINGS)
def test_the_schema_agrees_on_mesh_binding(gateways: list[str], bound: bool) -> None:
    """load/istio.py cannot import mesh/: its `*`-host check writes the rule again."""
    route = [{"destination": {"host": "staff"}}]
    spec = {"hosts": ["*"], "gateways": gateways, "http": [{"route": route}]}
    if bound:
        with pytest.raises(ValidationError, match="bound to the mesh"):
            istio.VirtualServiceSpec.model_validate(spec)
    else:
        istio.VirtualServiceSpec.model_validate(spec)


@pytest.mark.parametrize(
    ("match", "why"),
    [
        (None, "no match"),
        ({}, "an empty match"),
        ({"name": "all"}, "an empty match"),
        ({"uri": {"prefix": "/"}}, "uri prefix '/'"),
        ({"uri": {"regex": ".*"}, "name": "all"}, "uri regex '.*'"),
        ({"uri": {"prefix": "/api"}}, None),
        ({"uri": {"exact": "/"}}, None),
        ({"uri": {"prefix": "/"}, "method": {"exact": "GET"}}, None),
        ({"uri": {"prefix": "/"}, "headers": {"x": {"exact": "1"}}}, None),
        ({"uri": {"prefix": "/"}, "queryParams": {"q": {"exact": "1"}}}, None),
        ({"uri": {"prefix": "/"}, "port": 8080}, None),  # a filter: not every request
        ({"gateways": ["mesh"]}, None),
        ({"sourceLabels": {"app": "a"}}, None),
        ({"sourceNamespace": "other"}, None),
    ],
)
def test_catch_all_match(match: dict[str, Any] | None, why: str | None) -> None:
    parsed = None if match is None else istio.HTTPMatchRequest.model_validate(match)
    assert names.catch_all(parsed) == why


@pytest.mark.parametrize(
    ("kind", "value", "catch_all"),
    [("prefix", "/", True), ("regex", ".*", True), ("prefix", "/a", False), ("exact", "/", False)],
)
def test_catch_all_uri(kind: str, value: str, catch_all: bool) -> None:
    assert names.catch_all_uri(kind, value) is catch_all


def _last_keys(fields: tuple[tuple[str, str], ...]) -> set[str]:
    return {path.rsplit(".", 1)[-1] for _, path in fields}


def test_field_keys_are_the_last_keys_of_the_field_paths() -> None:
    assert _last_keys(names.HOST_FIELDS) == names.HOST_KEYS | names.HOST_LIST_KEYS
    assert _last_keys(names.NAMESPACE_FIELDS) == names.NAMESPACE_KEYS | names.NAMESPACE_LIST_KEYS
    assert _last_keys(names.GATEWAY_FIELDS) == names.GATEWAY_LIST_KEYS
    assert {kind for kind, _ in names.HOST_FIELDS} >= names.NAMESPACED_HOST_KINDS
