"""outlierDetection and connectionPool as istiod writes them (cluster_traffic_policy.go
applyOutlierDetection, applyConnectionPool; util.go MergeSubsetTrafficPolicy)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from meshlab.backends.embedded.envoy.bootstrap import placeholder_addresses, render_bootstrap
from meshlab.load.manifests import load_manifests
from meshlab.mesh.plan import MeshPlan, build_plan
from meshlab.mesh.resilience import UINT32_MAX, OutlierPlan

DATA = Path(__file__).resolve().parents[1] / "data" / "mesh"
STAFF = "fleetman-staff-service.default.svc.cluster.local"


def plan_of(tmp_path: Path, rule: str) -> MeshPlan:
    path = tmp_path / "rule.yaml"
    path.write_text(textwrap.dedent(rule), encoding="utf-8")
    return build_plan(load_manifests([DATA / "apps.yaml", path]))


def envoy_cluster(plan: MeshPlan, name: str) -> dict[str, Any]:
    config = render_bootstrap(plan, placeholder_addresses(plan))
    return next(c for c in config["static_resources"]["clusters"] if c["name"] == name)


def cluster(port: int, subset: str) -> str:
    return f"outbound|{port}|{subset}|{STAFF}"


def _plan() -> MeshPlan:
    return build_plan(load_manifests([DATA / "apps.yaml", DATA / "outlier-pool.yaml"]))


def test_rule_policy_reaches_default_and_subset_clusters() -> None:
    plan = _plan()
    for name in (f"outbound|8080||{STAFF}", cluster(8080, "safe")):
        rendered = envoy_cluster(plan, name)
        assert rendered["outlier_detection"] == {
            "enforcing_success_rate": 0,
            "consecutive_5xx": 2,
            "enforcing_consecutive_5xx": 100,
            "interval": "10s",
            "base_ejection_time": "30s",
            "max_ejection_percent": 100,
        }, "consecutiveErrors (deprecated) must not appear"
        assert rendered["common_lb_config"] == {"healthy_panic_threshold": {"value": 0.0}}
        [limits] = rendered["circuit_breakers"]["thresholds"]
        assert limits["max_connections"] == 1
        assert limits["max_pending_requests"] == 1
        assert limits["max_requests"] == UINT32_MAX
        assert limits["max_retries"] == UINT32_MAX
        assert rendered["connect_timeout"] == "0.25s"
        options = rendered["typed_extension_protocol_options"]
        common = next(iter(options.values()))["common_http_protocol_options"]
        assert common == {"idle_timeout": "30s", "max_requests_per_connection": 10}


def test_subset_block_replaces_the_rules_whole() -> None:
    risky = envoy_cluster(_plan(), cluster(8080, "risky"))
    assert risky["outlier_detection"] == {
        "enforcing_success_rate": 0,
        "consecutive_5xx": 0,
        "enforcing_consecutive_5xx": 0,
        "consecutive_gateway_failure": 3,
        "enforcing_consecutive_gateway_failure": 100,
    }
    assert risky["common_lb_config"] == {"healthy_panic_threshold": {"value": 50.0}}
    # the subset set no connectionPool: the rule's still applies
    assert risky["circuit_breakers"]["thresholds"][0]["max_connections"] == 1


def test_without_a_rule_istio_writes_unlimited_breakers_and_no_detection() -> None:
    plan = build_plan(load_manifests([DATA / "apps.yaml"]))
    rendered = envoy_cluster(plan, f"outbound|8080||{STAFF}")
    assert "outlier_detection" not in rendered
    assert "common_lb_config" not in rendered
    assert set(rendered["circuit_breakers"]["thresholds"][0].values()) == {UINT32_MAX, True}


def test_port_entry_replaces_the_top_level_and_subset_port_entry_wins(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: staff}
        spec:
          host: fleetman-staff-service
          trafficPolicy:
            outlierDetection: {consecutive5xxErrors: 2}
            portLevelSettings:
            - port: {number: 8080}
              connectionPool: {http: {http2MaxRequests: 5, maxRetries: 4}}
          subsets:
          - name: safe
            labels: {version: safe}
            trafficPolicy:
              portLevelSettings:
              - port: {number: 8080}
                outlierDetection: {interval: 1s}
        """,
    )
    default = plan.clusters[f"outbound|8080||{STAFF}"]
    assert default.outlier is None  # the port entry has none: the top level's is not inherited
    assert (default.pool.max_requests, default.pool.max_retries) == (5, 4)
    safe = plan.clusters[cluster(8080, "safe")]
    assert safe.outlier == OutlierPlan(interval=1.0)
    assert safe.outlier.ejects_after == 5  # Envoy's default
    assert not safe.pool.limited  # the subset's port entry has no pool: defaults


def test_outlier_and_pool_are_no_longer_noted_as_unsimulated() -> None:
    notes = [n.message for n in _plan().notes]
    assert not [n for n in notes if "outlierDetection" in n or "connectionPool" in n]
