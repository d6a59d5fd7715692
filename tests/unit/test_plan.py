"""The Istio -> Envoy translation (`build_plan`): clusters, route tables, vhosts, with Istio's
semantics as /work/shared/reference/istio-semantics.md (sections 1-4) states them."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from meshlab.backends.embedded.envoy.bootstrap import placeholder_addresses, render_bootstrap
from meshlab.load.manifests import load_manifests
from meshlab.mesh.expect import configured_split
from meshlab.mesh.plan import (
    DEFAULT_RETRY_ON,
    Forward,
    HashPolicyPlan,
    MeshPlan,
    RoutePlan,
    VirtualHostPlan,
    build_plan,
)
from meshlab.mesh.request import ProbeRequest

ROOT = Path(__file__).resolve().parents[2]
LAB2 = ROOT / "labs" / "2-traffic"
DATA = ROOT / "tests" / "data" / "mesh"
APPS = DATA / "apps.yaml"
STAFF = "fleetman-staff-service.default.svc.cluster.local"
WEBAPP = "fleetman-webapp.default.svc.cluster.local"

SUBSETS = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: fleetman-staff-service
spec:
  host: fleetman-staff-service
  subsets:
  - name: safe
    labels:
      version: safe
  - name: risky
    labels:
      version: risky
"""


def plan_of(
    tmp_path: Path, *docs: str, files: tuple[Path, ...] = (APPS,), namespace: str = "default"
) -> MeshPlan:
    """The plan for `files` plus YAML snippets (each written to its own file, in order)."""
    paths = list(files)
    for i, doc in enumerate(docs):
        path = tmp_path / f"extra-{i}.yaml"
        path.write_text(textwrap.dedent(doc), encoding="utf-8")
        paths.append(path)
    return build_plan(load_manifests(paths, namespace), namespace)


def lab2() -> MeshPlan:
    return build_plan(
        load_manifests([LAB2 / "fleetman.yaml", LAB2 / "istio-rules.yaml"], "default")
    )


def vhost(plan: MeshPlan, fqdn: str = STAFF, port: int = 8080) -> VirtualHostPlan:
    return next(v for v in plan.route_tables[str(port)] if v.name == f"{fqdn}:{port}")


def routes(plan: MeshPlan, fqdn: str = STAFF, port: int = 8080) -> list[RoutePlan]:
    return vhost(plan, fqdn, port).routes


def forward(route: RoutePlan) -> Forward:
    assert isinstance(route.action, Forward)
    return route.action


def envoy_routes(plan: MeshPlan, fqdn: str = STAFF, port: int = 8080) -> list[dict[str, Any]]:
    """The routes Envoy gets for one vhost, from the rendered bootstrap."""
    config = render_bootstrap(plan, placeholder_addresses(plan))
    listener = next(
        lst for lst in config["static_resources"]["listeners"] if lst["name"] == f"0.0.0.0_{port}"
    )
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    vhosts = hcm["route_config"]["virtual_hosts"]
    return next(v for v in vhosts if v["name"] == f"{fqdn}:{port}")["routes"]


def envoy_cluster(plan: MeshPlan, name: str) -> dict[str, Any]:
    config = render_bootstrap(plan, placeholder_addresses(plan))
    return next(c for c in config["static_resources"]["clusters"] if c["name"] == name)


def cluster(port: int, subset: str, host: str = STAFF) -> str:
    return f"outbound|{port}|{subset}|{host}"


def vs(spec: str, name: str = "fleetman-staff-service", meta: str = "") -> str:
    """A VirtualService document; `spec` and `meta` are YAML indented by two spaces."""
    return (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n"
        f"  name: {name}\n{meta}spec:\n{textwrap.indent(textwrap.dedent(spec), '  ')}"
    )


def other_namespace_app(namespace: str = "other") -> str:
    return f"""
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: staff-service
      namespace: {namespace}
    spec:
      selector:
        matchLabels:
          app: staff-service
      template:
        metadata:
          labels:
            app: staff-service
            version: safe
        spec:
          containers:
          - name: staff-service
            image: richardchesterwood/istio-fleetman-staff-service:6
            ports:
            - containerPort: 8080
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: fleetman-staff-service
      namespace: {namespace}
    spec:
      selector:
        app: staff-service
      ports:
      - name: http
        port: 8080
    """


# --- clusters ------------------------------------------------------------------------------


def test_lab2_has_a_default_cluster_per_port_and_one_per_subset() -> None:
    plan = lab2()
    assert set(plan.clusters) == {
        cluster(8080, "", STAFF),
        cluster(8080, "safe", STAFF),
        cluster(8080, "risky", STAFF),
        cluster(8080, "", "fleetman-position-tracker.default.svc.cluster.local"),
        cluster(8080, "", "fleetman-api-gateway.default.svc.cluster.local"),
        cluster(8080, "", "fleetman-vehicle-telemetry.default.svc.cluster.local"),
        cluster(80, "", WEBAPP),
    }
    assert plan.clusters[cluster(8080, "risky")].subset_labels == {"version": "risky"}


def test_every_port_gets_the_default_cluster_and_each_subset(tmp_path: Path) -> None:
    two_ports = APPS.read_text().replace(
        "  - name: http\n    port: 8080\n",
        "  - name: http\n    port: 8080\n  - name: http-admin\n    port: 9090\n",
    )
    apps = tmp_path / "apps.yaml"
    apps.write_text(two_ports)
    plan = plan_of(tmp_path, SUBSETS, files=(apps,))
    assert {n for n in plan.clusters if n.endswith(STAFF)} == {
        cluster(p, s) for p in (8080, 9090) for s in ("", "safe", "risky")
    }


def test_subset_endpoints_are_service_endpoints_with_superset_labels(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: staff
        spec:
          host: fleetman-staff-service
          subsets:
          - name: everyone
          - name: risky
            labels:
              app: staff-service
              version: risky
          - name: webapp
            labels:
              app: webapp
              version: safe
        """,
        files=(LAB2 / "fleetman.yaml",),
    )

    def pods(subset: str) -> list[str]:
        return sorted(
            e.pod.labels["version"] for e in plan.clusters[cluster(8080, subset)].endpoints
        )

    assert pods("") == ["risky", "safe"]
    assert pods("everyone") == ["risky", "safe"]  # no labels: every endpoint of the Service
    assert pods("risky") == ["risky"]
    # the webapp pod has these labels, but it is no endpoint of the staff Service
    assert pods("webapp") == []
    assert all(e.port == 8080 for e in plan.clusters[cluster(8080, "risky")].endpoints)


def test_named_target_port_resolves_per_pod(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: named
        spec:
          selector:
            matchLabels: {app: web, build: named}
          template:
            metadata:
              labels: {app: web, build: named}
            spec:
              containers:
              - name: web
                image: example/web:1
                ports:
                - containerPort: 8081
                  name: web
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: unnamed
        spec:
          selector:
            matchLabels: {app: web, build: unnamed}
          template:
            metadata:
              labels: {app: web, build: unnamed}
            spec:
              containers:
              - name: web
                image: example/web:1
                ports:
                - containerPort: 8080
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: web
        spec:
          selector: {app: web}
          ports:
          - name: http
            port: 80
            targetPort: web
        """,
        files=(),
    )
    endpoints = plan.clusters[cluster(80, "", "web.default.svc.cluster.local")].endpoints
    assert [(e.pod.labels["build"], e.port) for e in endpoints] == [("named", 8081)]


def test_undeclared_container_port_still_receives_service_traffic(tmp_path: Path) -> None:
    # containerPort is informational in Kubernetes: the pod is an endpoint on the target port
    apps = tmp_path / "apps.yaml"
    apps.write_text(APPS.read_text().replace("        ports:\n        - containerPort: 8080\n", ""))
    plan = plan_of(tmp_path, files=(apps,))
    endpoints = plan.clusters[cluster(8080, "")].endpoints
    assert sorted(e.pod.labels["version"] for e in endpoints) == ["risky", "safe"]
    addresses = placeholder_addresses(plan)
    assert all(8080 in addresses[e.pod.name] for e in endpoints)
    config = render_bootstrap(plan, addresses)
    staff = next(
        c for c in config["static_resources"]["clusters"] if c["name"] == cluster(8080, "")
    )
    assert len(staff["load_assignment"]["endpoints"][0]["lb_endpoints"]) == 2


# --- hosts and domains ---------------------------------------------------------------------


def test_vhost_domains_in_the_same_namespace_include_the_short_name() -> None:
    assert vhost(lab2()).domains == [
        STAFF,
        f"{STAFF}.",
        "fleetman-staff-service",
        "fleetman-staff-service.default.svc",
        "fleetman-staff-service.default",
    ]


def test_vhost_domains_from_another_namespace_have_no_bare_short_name(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, other_namespace_app(), files=())
    fqdn = "fleetman-staff-service.other.svc.cluster.local"
    domains = vhost(plan, fqdn).domains
    assert sorted(domains) == sorted(
        [fqdn, f"{fqdn}.", "fleetman-staff-service.other.svc", "fleetman-staff-service.other"]
    )
    assert "fleetman-staff-service" not in domains


def test_no_domain_carries_a_port() -> None:
    plan = lab2()
    domains = [d for table in plan.route_tables.values() for v in table for d in v.domains]
    assert domains
    assert not [d for d in domains if ":" in d]


def test_short_vs_host_resolves_in_the_rules_namespace(tmp_path: Path) -> None:
    # In namespace `other`, `fleetman-staff-service` means fleetman-staff-service.other...: the
    # default-namespace Service keeps its default route.
    plan = plan_of(
        tmp_path,
        SUBSETS,
        vs(
            """
            hosts: [fleetman-staff-service]
            http:
            - route:
              - destination: {host: fleetman-staff-service.default.svc.cluster.local}
            """,
            meta="  namespace: other\n",
        ),
    )
    assert [r.name for r in routes(plan)] == ["default"]
    assert vhost(plan).virtual_service is None


def test_short_destination_resolves_in_the_rules_namespace(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        vs(
            f"""
            hosts: [{STAFF}]
            http:
            - route:
              - destination: {{host: fleetman-staff-service}}
            """,
            meta="  namespace: other\n",
        ),
    )
    target = forward(routes(plan)[0]).targets[0]
    assert target.cluster == cluster(8080, "", "fleetman-staff-service.other.svc.cluster.local")
    assert target.cluster not in plan.clusters


def test_dotted_destination_is_literal_and_gives_503_nc(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        vs(
            """
            hosts: [fleetman-staff-service]
            http:
            - route:
              - destination: {host: fleetman-staff-service.default}
            """
        ),
    )
    target = forward(routes(plan)[0]).targets[0]
    # no Service is named that: the cluster takes the listener port and does not exist
    assert target.cluster == "outbound|8080||fleetman-staff-service.default"
    assert target.cluster not in plan.clusters
    split = configured_split(
        plan, ProbeRequest("http://fleetman-staff-service:8080/driver/x"), "version"
    )
    [cause] = split.causes
    assert cause.flags == "NC"
    assert cause.effect.startswith("503 NC")
    assert "fleetman-staff-service.default is not a Service" in cause.reason


# --- weights -------------------------------------------------------------------------------


def test_single_destination_is_a_plain_cluster_even_with_weight_zero(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        SUBSETS,
        vs(
            """
            hosts: [fleetman-staff-service]
            http:
            - route:
              - destination: {host: fleetman-staff-service, subset: risky}
                weight: 0
            """
        ),
    )
    action = forward(routes(plan)[0])
    assert not action.weighted
    assert [t.cluster for t in action.targets] == [cluster(8080, "risky")]
    [route] = envoy_routes(plan)
    assert route["route"]["cluster"] == cluster(8080, "risky")
    assert "weighted_clusters" not in route["route"]


def test_weighted_clusters_keep_raw_weights_and_drop_zeros(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        SUBSETS,
        vs(
            """
            hosts: [fleetman-staff-service]
            http:
            - route:
              - destination: {host: fleetman-staff-service, subset: safe}
                weight: 3
              - destination: {host: fleetman-staff-service, subset: risky}
                weight: 0
              - destination: {host: fleetman-staff-service}
                weight: 1
            """
        ),
    )
    action = forward(routes(plan)[0])
    assert action.weighted
    assert [(t.cluster, t.weight) for t in action.targets] == [
        (cluster(8080, "safe"), 3),
        (cluster(8080, ""), 1),
    ]
    weighted = envoy_routes(plan)[0]["route"]["weighted_clusters"]
    assert weighted == {
        "clusters": [
            {"name": cluster(8080, "safe"), "weight": 3},
            {"name": cluster(8080, ""), "weight": 1},
        ]
    }  # no total_weight


def test_lab2_weights_are_a_90_10_weighted_cluster() -> None:
    [route] = routes(lab2())
    action = forward(route)
    assert action.weighted
    assert [(t.subset, t.weight) for t in action.targets] == [("safe", 90), ("risky", 10)]


# --- routes --------------------------------------------------------------------------------


def test_routes_follow_rule_and_match_order_and_stop_at_the_first_catch_all(
    tmp_path: Path,
) -> None:
    plan = plan_of(
        tmp_path,
        SUBSETS,
        vs(
            """
            hosts: [fleetman-staff-service]
            http:
            - name: tester
              match:
              - name: by-header
                headers:
                  end-user: {exact: jason}
              - name: by-path
                uri: {prefix: /test}
              route:
              - destination: {host: fleetman-staff-service, subset: risky}
            - name: get
              match:
              - uri: {prefix: /}
                method: {exact: GET}
              route:
              - destination: {host: fleetman-staff-service, subset: safe}
            - name: rest
              match:
              - name: all
                uri: {prefix: /}
              - name: never
                headers:
                  x-never: {exact: "1"}
              route:
              - destination: {host: fleetman-staff-service, subset: safe}
            - name: unreachable
              route:
              - destination: {host: fleetman-staff-service, subset: risky}
            """
        ),
    )
    # prefix / with a method is no catch-all (method is a header matcher)
    assert [r.name for r in routes(plan)] == [
        "tester.by-header",
        "tester.by-path",
        "get",
        "rest.all",
    ]
    assert [r.get("name") for r in envoy_routes(plan)] == [
        "tester.by-header",
        "tester.by-path",
        "get",
        "rest.all",
    ]


def test_a_rule_without_match_is_a_catch_all(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        SUBSETS,
        vs(
            """
            hosts: [fleetman-staff-service]
            http:
            - name: first
              route:
              - destination: {host: fleetman-staff-service, subset: safe}
            - name: second
              match:
              - headers:
                  end-user: {exact: jason}
              route:
              - destination: {host: fleetman-staff-service, subset: risky}
            """
        ),
    )
    [route] = routes(plan)
    assert route.name == "first"
    assert route.match.is_catch_all


def test_match_port_keeps_a_route_off_other_listeners(tmp_path: Path) -> None:
    two_ports = APPS.read_text().replace(
        "  - name: http\n    port: 8080\n",
        "  - name: http\n    port: 8080\n  - name: http-admin\n    port: 9090\n",
    )
    apps = tmp_path / "apps.yaml"
    apps.write_text(two_ports)
    plan = plan_of(
        tmp_path,
        SUBSETS,
        vs(
            """
            hosts: [fleetman-staff-service]
            http:
            - match:
              - port: 9090
              route:
              - destination: {host: fleetman-staff-service, subset: risky}
            """
        ),
        files=(apps,),
    )
    # 9090: the VS route, its destination port taken from the listener (2-port Service)
    [admin] = routes(plan, port=9090)
    assert forward(admin).targets[0].cluster == cluster(9090, "risky")
    # 8080: every route filtered out, so the Service keeps its default route
    [default] = routes(plan, port=8080)
    assert default.name == "default"
    assert forward(default).targets[0].cluster == cluster(8080, "")


def test_source_labels_routes_are_dropped_for_the_probe_client(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        SUBSETS,
        vs(
            """
            hosts: [fleetman-staff-service]
            http:
            - name: from-tester
              match:
              - sourceLabels: {app: tester}
              route:
              - destination: {host: fleetman-staff-service, subset: risky}
            - name: from-other-namespace
              match:
              - sourceNamespace: other
              route:
              - destination: {host: fleetman-staff-service, subset: risky}
            - name: from-this-namespace
              match:
              - sourceNamespace: default
                uri: {prefix: /driver}
              route:
              - destination: {host: fleetman-staff-service, subset: safe}
            - name: mesh-ignores-source-labels
              match:
              - sourceLabels: {app: tester}
                sourceNamespace: other
                gateways: [mesh]
                uri: {prefix: /mesh}
              route:
              - destination: {host: fleetman-staff-service, subset: risky}
            - name: rest
              route:
              - destination: {host: fleetman-staff-service, subset: safe}
            """
        ),
    )
    assert [r.name for r in routes(plan)] == [
        "from-this-namespace",
        "mesh-ignores-source-labels",
        "rest",
    ]


def test_a_vs_whose_routes_are_all_filtered_keeps_the_default_route(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        SUBSETS,
        vs(
            """
            hosts: [fleetman-staff-service]
            http:
            - match:
              - sourceLabels: {app: tester}
              route:
              - destination: {host: fleetman-staff-service, subset: risky}
            """
        ),
    )
    assert [r.name for r in routes(plan)] == ["default"]
    assert vhost(plan).virtual_service is None


def test_a_vs_bound_to_a_gateway_only_does_not_affect_sidecars(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        SUBSETS,
        vs(
            """
            hosts: [fleetman-staff-service]
            gateways: [some-gateway]
            http:
            - route:
              - destination: {host: fleetman-staff-service, subset: risky}
            """
        ),
    )
    assert [r.name for r in routes(plan)] == ["default"]
    assert vhost(plan).virtual_service is None


def test_a_vs_bound_to_a_gateway_and_mesh_affects_sidecars(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        SUBSETS,
        vs(
            """
            hosts: [fleetman-staff-service]
            gateways: [some-gateway, mesh]
            http:
            - route:
              - destination: {host: fleetman-staff-service, subset: risky}
            """
        ),
    )
    assert forward(routes(plan)[0]).targets[0].subset == "risky"


@pytest.mark.parametrize(
    ("older", "newer", "winner"),
    [
        ("2024-01-01T00:00:00Z", "2024-06-01T00:00:00Z", "zz-old"),
        ("2024-06-01T00:00:00Z", "2024-01-01T00:00:00Z", "aa-new"),
        (None, None, "aa-new"),  # same (no) timestamp: by name
    ],
)
def test_two_vss_for_one_host_the_oldest_then_first_by_name_wins(
    tmp_path: Path, older: str | None, newer: str | None, winner: str
) -> None:
    def meta(stamp: str | None) -> str:
        return f'  creationTimestamp: "{stamp}"\n' if stamp else ""

    spec = """
        hosts: [fleetman-staff-service]
        http:
        - route:
          - destination: {host: fleetman-staff-service, subset: %s}
        """
    plan = plan_of(
        tmp_path,
        SUBSETS,
        vs(spec % "safe", name="zz-old", meta=meta(older)),  # written first
        vs(spec % "risky", name="aa-new", meta=meta(newer)),
    )
    owner = vhost(plan).virtual_service
    assert owner is not None
    assert owner.name == winner
    assert len(routes(plan)) == 1  # no merge: the other VS is dropped


def test_when_the_first_vs_yields_no_routes_the_next_one_owns_the_host(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        SUBSETS,
        vs(
            """
            hosts: [fleetman-staff-service]
            http:
            - match:
              - sourceLabels: {app: tester}
              route:
              - destination: {host: fleetman-staff-service, subset: risky}
            """,
            name="aa-filtered",
        ),
        vs(
            """
            hosts: [fleetman-staff-service]
            http:
            - route:
              - destination: {host: fleetman-staff-service, subset: safe}
            """,
            name="bb-plain",
        ),
    )
    owner = vhost(plan).virtual_service
    assert owner is not None
    assert owner.name == "bb-plain"


def test_service_without_vs_gets_the_default_route() -> None:
    plan = lab2()
    [route] = routes(plan, "fleetman-api-gateway.default.svc.cluster.local")
    assert route.name == "default"
    assert route.match.is_catch_all
    assert forward(route).targets[0].cluster == cluster(
        8080, "", "fleetman-api-gateway.default.svc.cluster.local"
    )
    assert route.timeout_s == 0.0
    assert route.retry is not None
    assert route.retry.attempts == 2
    # and the table ends with the allow_any catch-all vhost
    assert plan.route_tables["8080"][-1].domains == ["*"]


# --- DestinationRules ----------------------------------------------------------------------


def dr(namespace: str, host: str, subset: str) -> str:
    return f"""
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata:
      name: staff-{namespace}
      namespace: {namespace}
    spec:
      host: {host}
      subsets:
      - name: {subset}
        labels:
          version: safe
    """


@pytest.mark.parametrize(
    ("present", "winner"),
    [
        (("default", "other", "istio-system"), "from-client"),
        (("other", "istio-system"), "from-service"),
        (("istio-system",), "from-root"),
    ],
)
def test_destination_rule_lookup_client_then_service_then_root_namespace(
    tmp_path: Path, present: tuple[str, ...], winner: str
) -> None:
    fqdn = "fleetman-staff-service.other.svc.cluster.local"
    rules = {
        "default": dr("default", fqdn, "from-client"),
        "other": dr("other", "fleetman-staff-service", "from-service"),
        "istio-system": dr("istio-system", fqdn, "from-root"),
    }
    plan = plan_of(tmp_path, other_namespace_app(), *(rules[n] for n in present), files=())
    subsets = {c.subset for c in plan.clusters.values() if c.subset}
    assert subsets == {winner}


def test_same_host_destination_rules_merge_first_subset_definition_wins(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        # written first, but "b-..." sorts after "a-..." (same creationTimestamp: by name)
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: b-later
        spec:
          host: fleetman-staff-service
          trafficPolicy:
            loadBalancer: {simple: RANDOM}
          subsets:
          - name: safe
            labels: {version: risky}
          - name: canary
            labels: {version: risky}
        """,
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: a-first
        spec:
          host: fleetman-staff-service.default.svc.cluster.local
          trafficPolicy:
            loadBalancer: {simple: ROUND_ROBIN}
          subsets:
          - name: safe
            labels: {version: safe}
        """,
    )
    safe = plan.clusters[cluster(8080, "safe")]
    assert safe.subset_labels == {"version": "safe"}
    assert [e.pod.labels["version"] for e in safe.endpoints] == ["safe"]
    assert cluster(8080, "canary") in plan.clusters
    assert plan.clusters[cluster(8080, "")].lb_policy == "ROUND_ROBIN"  # first policy wins


@pytest.mark.parametrize(
    ("load_balancer", "lb_policy"),
    [
        (None, "LEAST_REQUEST"),
        ("{simple: ROUND_ROBIN}", "ROUND_ROBIN"),
        ("{simple: RANDOM}", "RANDOM"),
        ("{simple: LEAST_CONN}", "LEAST_REQUEST"),
        ("{consistentHash: {httpHeaderName: x-user}}", "RING_HASH"),
    ],
)
def test_load_balancer_policy(tmp_path: Path, load_balancer: str | None, lb_policy: str) -> None:
    policy = f"  trafficPolicy:\n    loadBalancer: {load_balancer}\n" if load_balancer else ""
    plan = plan_of(
        tmp_path,
        SUBSETS.replace("spec:\n", f"spec:\n{policy}", 1),
    )
    assert {c.lb_policy for c in plan.clusters.values() if c.service.name.startswith("fleet")} == {
        lb_policy
    }
    assert envoy_cluster(plan, cluster(8080, "safe"))["lb_policy"] == lb_policy


def test_service_without_destination_rule_uses_least_request() -> None:
    plan = lab2()
    assert plan.clusters[cluster(80, "", WEBAPP)].lb_policy == "LEAST_REQUEST"
    assert envoy_cluster(plan, cluster(80, "", WEBAPP))["lb_policy"] == "LEAST_REQUEST"


def test_subset_load_balancer_replaces_the_rules(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: staff
        spec:
          host: fleetman-staff-service
          trafficPolicy:
            loadBalancer: {simple: ROUND_ROBIN}
          subsets:
          - name: safe
            labels: {version: safe}
          - name: risky
            labels: {version: risky}
            trafficPolicy:
              loadBalancer: {simple: RANDOM}
        """,
    )
    assert plan.clusters[cluster(8080, "")].lb_policy == "ROUND_ROBIN"
    assert plan.clusters[cluster(8080, "safe")].lb_policy == "ROUND_ROBIN"
    assert plan.clusters[cluster(8080, "risky")].lb_policy == "RANDOM"


def test_consistent_hash_header_gives_ring_hash_and_a_hash_policy() -> None:
    plan = build_plan(load_manifests([APPS, DATA / "ring-hash.yaml"]))
    [route] = routes(plan)
    assert route.hash_policy == HashPolicyPlan("header", "x-user")
    [envoy] = envoy_routes(plan)
    assert envoy["route"]["hash_policy"] == [{"header": {"header_name": "x-user"}}]
    # Istio: a single-destination route with a hash retries without previous_hosts
    assert "retry_host_predicate" not in envoy["route"]["retry_policy"]
    assert envoy["route"]["retry_policy"]["num_retries"] == 2
    staff = envoy_cluster(plan, cluster(8080, ""))
    assert staff["lb_policy"] == "RING_HASH"
    assert staff["ring_hash_lb_config"] == {"minimum_ring_size": "1024"}


def test_consistent_hash_on_the_default_route(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: staff
        spec:
          host: fleetman-staff-service
          trafficPolicy:
            loadBalancer:
              consistentHash: {httpHeaderName: X-User}
        """,
    )
    [route] = routes(plan)
    assert route.name == "default"
    # istiod writes the name as given (route.go ConsistentHashToHashPolicy); Envoy lowercases
    assert route.hash_policy == HashPolicyPlan("header", "X-User")
    [envoy] = envoy_routes(plan)
    assert envoy["route"]["hash_policy"] == [{"header": {"header_name": "X-User"}}]


@pytest.mark.parametrize(
    ("consistent_hash", "policy", "envoy"),
    [
        (
            "{httpCookie: {name: user, ttl: 60s, path: /}}",
            HashPolicyPlan("cookie", "user", 60.0, "/"),
            {"cookie": {"name": "user", "ttl": "60s", "path": "/"}},
        ),
        (
            "{useSourceIp: true}",
            HashPolicyPlan("source_ip"),
            {"connection_properties": {"source_ip": True}},
        ),
        (
            "{httpQueryParameterName: user}",
            HashPolicyPlan("query_parameter", "user"),
            {"query_parameter": {"name": "user"}},
        ),
    ],
)
def test_every_consistent_hash_key_becomes_an_envoy_hash_policy(
    tmp_path: Path, consistent_hash: str, policy: HashPolicyPlan, envoy: dict[str, Any]
) -> None:
    plan = plan_of(
        tmp_path,
        f"""
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: staff
        spec:
          host: fleetman-staff-service
          trafficPolicy:
            loadBalancer:
              consistentHash: {consistent_hash}
        """,
    )
    [route] = routes(plan)
    assert route.hash_policy == policy
    [rendered] = envoy_routes(plan)
    assert rendered["route"]["hash_policy"] == [envoy]


def test_the_hash_policy_comes_from_the_destinations_rule(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: staff
        spec:
          host: fleetman-staff-service
          trafficPolicy:
            loadBalancer:
              consistentHash: {httpHeaderName: x-user}
        """,
        vs(
            """
            hosts: [fleetman-webapp]
            http:
            - route:
              - destination: {host: fleetman-staff-service}
            """,
            name="webapp-to-staff",
        ),
        vs(
            """
            hosts: [fleetman-staff-service]
            http:
            - route:
              - destination: {host: fleetman-webapp}
            """,
            name="staff-to-webapp",
        ),
        files=(LAB2 / "fleetman.yaml",),
    )
    assert routes(plan, WEBAPP, 80)[0].hash_policy == HashPolicyPlan("header", "x-user")
    assert routes(plan, STAFF, 8080)[0].hash_policy is None


# --- retries and timeouts ------------------------------------------------------------------


def test_default_retry_policy() -> None:
    plan = lab2()
    [route] = routes(plan)
    assert route.retry is not None
    assert route.retry.attempts == 2
    assert route.retry.retry_on == DEFAULT_RETRY_ON
    assert set(route.retry.retry_on.split(",")) == {
        "connect-failure",
        "refused-stream",
        "unavailable",
        "cancelled",
        "retriable-status-codes",
    }
    assert route.retry.retriable_status_codes == ()  # 503 is not retried by default
    [envoy] = envoy_routes(plan)
    policy = envoy["route"]["retry_policy"]
    assert policy["num_retries"] == 2
    assert "retriable_status_codes" not in policy
    assert "5xx" not in policy["retry_on"]
    assert [p["name"] for p in policy["retry_host_predicate"]] == [
        "envoy.retry_host_predicates.previous_hosts"
    ]
    assert policy["host_selection_retry_max_attempts"] == "5"


def test_vs_retries_with_zero_attempts_disable_retries(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        vs(
            """
            hosts: [fleetman-staff-service]
            http:
            - retries: {attempts: 0}
              route:
              - destination: {host: fleetman-staff-service}
            """
        ),
    )
    assert routes(plan)[0].retry is None
    assert "retry_policy" not in envoy_routes(plan)[0]["route"]


def test_vs_retries_map_onto_envoy(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        vs(
            """
            hosts: [fleetman-staff-service]
            http:
            - retries:
                attempts: 3
                retryOn: 5xx,503
                perTryTimeout: 2s
                retryIgnorePreviousHosts: false
                backoff: 50ms
              route:
              - destination: {host: fleetman-staff-service}
            """
        ),
    )
    policy = envoy_routes(plan)[0]["route"]["retry_policy"]
    assert policy["num_retries"] == 3
    assert policy["retry_on"] == "5xx,retriable-status-codes"
    assert policy["retriable_status_codes"] == [503]
    assert policy["per_try_timeout"] == "2s"
    assert "retry_host_predicate" not in policy
    assert policy["retry_back_off"] == {"base_interval": "0.050s"}


def test_vs_retries_without_retry_on_keep_the_default_list(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        vs(
            """
            hosts: [fleetman-staff-service]
            http:
            - retries: {attempts: 5}
              route:
              - destination: {host: fleetman-staff-service}
            """
        ),
    )
    retry = routes(plan)[0].retry
    assert retry is not None
    assert (retry.attempts, retry.retry_on, retry.previous_hosts) == (5, DEFAULT_RETRY_ON, True)


def test_timeout_defaults_to_zero_and_takes_the_vs_value(tmp_path: Path) -> None:
    assert envoy_routes(lab2())[0]["route"]["timeout"] == "0s"
    plan = plan_of(
        tmp_path,
        vs(
            """
            hosts: [fleetman-staff-service]
            http:
            - timeout: 1.5s
              route:
              - destination: {host: fleetman-staff-service}
            """
        ),
    )
    assert routes(plan)[0].timeout_s == 1.5
    assert envoy_routes(plan)[0]["route"]["timeout"] == "1.500s"


def _header_plan(tmp_path: Path) -> MeshPlan:
    return plan_of(
        tmp_path,
        SUBSETS,
        vs(
            """
            hosts: [fleetman-staff-service]
            http:
            - headers:
                request:
                  set: {x-env: lab}
                  add: {x-trace: meshlab}
                  remove: [x-debug]
                response:
                  set: {x-served-by: mesh}
              route:
              - destination: {host: fleetman-staff-service, subset: safe}
                weight: 90
                headers:
                  request: {add: {x-canary: "no"}}
              - destination: {host: fleetman-staff-service, subset: risky}
                weight: 10
                headers:
                  response: {set: {x-canary: "yes"}}
            """
        ),
    )


def test_header_operations_set_overwrites_add_appends_remove_drops(tmp_path: Path) -> None:
    [route] = envoy_routes(_header_plan(tmp_path))
    assert route["request_headers_to_add"] == [
        {"header": {"key": "x-env", "value": "lab"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
        {
            "header": {"key": "x-trace", "value": "meshlab"},
            "append_action": "APPEND_IF_EXISTS_OR_ADD",
        },
    ]
    assert route["request_headers_to_remove"] == ["x-debug"]
    assert route["response_headers_to_add"][0]["header"] == {"key": "x-served-by", "value": "mesh"}
    safe, risky = route["route"]["weighted_clusters"]["clusters"]
    assert safe["request_headers_to_add"][0]["append_action"] == "APPEND_IF_EXISTS_OR_ADD"
    assert risky["response_headers_to_add"][0]["header"] == {"key": "x-canary", "value": "yes"}


@pytest.mark.envoy
def test_header_operations_are_valid_envoy_config(tmp_path: Path) -> None:
    from meshlab.backends.embedded.envoy.binary import find_envoy
    from meshlab.backends.embedded.envoy.process import validate_bootstrap, write_bootstrap

    plan = _header_plan(tmp_path)
    config = write_bootstrap(
        render_bootstrap(plan, placeholder_addresses(plan)), tmp_path / "envoy.json"
    )
    ok, output = validate_bootstrap(find_envoy(), config)
    assert ok, output
