"""The rendered Envoy bootstrap, pinned by golden files, and Envoy's own verdict on them.

Regenerate after an intended change with
`MESHLAB_UPDATE_GOLDEN=1 pytest tests/unit/test_bootstrap.py` and review the diff: every line
of it changes what the embedded backend runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from meshlab.backends.embedded.envoy.binary import EnvoyBinary, find_envoy
from meshlab.backends.embedded.envoy.bootstrap import placeholder_addresses, render_bootstrap
from meshlab.backends.embedded.envoy.process import validate_bootstrap
from meshlab.backends.embedded.envoy.stats import stats_config
from meshlab.errors import BackendUnavailable
from meshlab.load.manifests import load_manifests
from meshlab.mesh.plan import build_plan

ROOT = Path(__file__).resolve().parents[2]
LAB2 = ROOT / "labs" / "2-traffic"
DATA = ROOT / "tests" / "data" / "mesh"
GOLDEN = ROOT / "tests" / "golden"
UPDATE = os.environ.get("MESHLAB_UPDATE_GOLDEN") == "1"

CASES: dict[str, list[Path]] = {
    "lab-2-traffic": [LAB2 / "fleetman.yaml", LAB2 / "istio-rules.yaml"],
    "header-canary": [DATA / "apps.yaml", DATA / "header-canary.yaml"],
    "missing-subset": [DATA / "apps.yaml", DATA / "missing-subset.yaml"],
    "fault-abort": [DATA / "apps.yaml", DATA / "fault-abort.yaml"],
    "ring-hash": [DATA / "apps.yaml", DATA / "ring-hash.yaml"],
    # Istio's routing corner cases (docs/reference/backends.md, "What is translated")
    "exact-beats-wildcard": [DATA / "apps.yaml", DATA / "exact-beats-wildcard.yaml"],
    "foreign-host": [DATA / "apps.yaml", DATA / "foreign-host.yaml"],
    "exported-tier": [DATA / "apps.yaml", DATA / "exported-tier.yaml"],
    "service-aliases": [DATA / "apps.yaml", DATA / "service-aliases.yaml"],
    "workload-selector": [DATA / "apps.yaml", DATA / "workload-selector.yaml"],
    "weighted-hash": [DATA / "apps.yaml", DATA / "weighted-hash.yaml"],
    "port-level": [DATA / "apps.yaml", DATA / "port-level.yaml"],
    "jwt-claims": [DATA / "apps.yaml", DATA / "jwt-claims.yaml"],
    "outlier-pool": [DATA / "apps.yaml", DATA / "outlier-pool.yaml"],
    "hash-sizes": [DATA / "apps.yaml", DATA / "hash-sizes.yaml"],
    # ServiceEntry hosts: clusters of loopback stand-ins only (mesh/external.py)
    "service-entries": [
        ROOT / "tests/data/external/app.yaml",
        ROOT / "tests/data/external/entries.yaml",
    ],
    "lab-2-traffic-stickiness": [
        ROOT / "labs" / "2-traffic-stickiness" / "fleetman.yaml",
        ROOT / "labs" / "2-traffic-stickiness" / "istio-rules.yaml",
    ],
}


def render(files: list[Path]) -> dict[str, Any]:
    plan = build_plan(load_manifests(files, "default"), "default")
    return render_bootstrap(plan, placeholder_addresses(plan))


def dump(config: dict[str, Any]) -> str:
    return json.dumps(config, indent=1, sort_keys=True) + "\n"


def golden_path(case: str) -> Path:
    return GOLDEN / f"bootstrap-{case}.json"


@pytest.mark.parametrize("case", sorted(CASES))
def test_bootstrap_matches_golden(case: str) -> None:
    text = dump(render(CASES[case]))
    path = golden_path(case)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with MESHLAB_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), (
        f"bootstrap for {case} differs from {path.name}; if intended, regenerate with "
        "MESHLAB_UPDATE_GOLDEN=1 and review the diff"
    )


def test_rendering_is_deterministic() -> None:
    files = CASES["lab-2-traffic"]
    assert dump(render(files)) == dump(render(files))


def test_placeholder_addresses_are_deterministic_and_distinct() -> None:
    plan = build_plan(load_manifests(CASES["lab-2-traffic"]))
    addresses = placeholder_addresses(plan)
    ports = [port for pod in addresses.values() for port in pod.values()]
    assert len(ports) == len(set(ports))
    assert min(ports) == 20000
    assert addresses == placeholder_addresses(build_plan(load_manifests(CASES["lab-2-traffic"])))


def test_lab2_golden_speaks_istio_names() -> None:
    config = render(CASES["lab-2-traffic"])
    listeners = {lst["name"] for lst in config["static_resources"]["listeners"]}
    assert listeners == {"0.0.0.0_80", "0.0.0.0_8080"}
    hcm = next(
        lst for lst in config["static_resources"]["listeners"] if lst["name"] == "0.0.0.0_8080"
    )["filter_chains"][0]["filters"][0]["typed_config"]
    route_config = hcm["route_config"]
    assert route_config["name"] == "8080"
    assert route_config["validate_clusters"] is False
    assert route_config["ignore_port_in_host_matching"] is True
    vhosts = route_config["virtual_hosts"]
    assert vhosts[-1]["name"] == "allow_any"
    assert [v["name"] for v in vhosts[:-1]] == sorted(v["name"] for v in vhosts[:-1])
    assert [f["name"] for f in hcm["http_filters"]] == [
        "envoy.filters.http.fault",
        "envoy.filters.http.router",
    ]
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    safe = clusters["outbound|8080|safe|fleetman-staff-service.default.svc.cluster.local"]
    [locality] = safe["load_assignment"]["endpoints"]
    assert [e["endpoint"]["hostname"] for e in locality["lb_endpoints"]] == [
        pod
        for pod in placeholder_addresses(build_plan(load_manifests(CASES["lab-2-traffic"])))
        if pod.startswith("staff-service-") and not pod.startswith("staff-service-risky")
    ]
    thresholds = safe["circuit_breakers"]["thresholds"][0]
    assert thresholds["max_connections"] == 4294967295
    assert thresholds["track_remaining"] is True


def test_fault_abort_becomes_a_per_route_fault_config() -> None:
    config = render(CASES["fault-abort"])
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    vhosts = hcm["typed_config"]["route_config"]["virtual_hosts"]
    staff = next(v for v in vhosts if v["name"].startswith("fleetman-staff-service."))
    fault = staff["routes"][0]["typed_per_filter_config"]["envoy.filters.http.fault"]
    assert fault["abort"] == {
        "http_status": 502,
        "percentage": {"numerator": 1000000, "denominator": "MILLION"},
    }


def test_missing_subset_route_points_at_a_cluster_that_does_not_exist() -> None:
    config = render(CASES["missing-subset"])
    clusters = {c["name"] for c in config["static_resources"]["clusters"]}
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    vhosts = hcm["typed_config"]["route_config"]["virtual_hosts"]
    staff = next(v for v in vhosts if v["name"].startswith("fleetman-staff-service."))
    weighted = staff["routes"][0]["route"]["weighted_clusters"]["clusters"]
    missing = "outbound|8080|canary|fleetman-staff-service.default.svc.cluster.local"
    assert [c["name"] for c in weighted][1] == missing
    assert missing not in clusters


@pytest.fixture(scope="module")
def envoy_binary(request: pytest.FixtureRequest) -> EnvoyBinary:
    try:
        return find_envoy(request.config.getoption("envoy", default=None))
    except BackendUnavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.envoy
@pytest.mark.parametrize("case", sorted(CASES))
def test_envoy_accepts_golden_config(case: str, envoy_binary: EnvoyBinary) -> None:
    path = golden_path(case)
    ok, output = validate_bootstrap(envoy_binary, path)
    assert ok, f"envoy --mode validate rejected {path.name}:\n{output}"
    assert "OK" in output


def test_the_stats_matcher_is_istios_default_list_plus_what_a_pod_asks_for() -> None:
    patterns = stats_config()["stats_matcher"]["inclusion_list"]["patterns"]
    prefixes = [p["prefix"] for p in patterns if "prefix" in p]
    assert {"server", "cluster_manager", "listener_manager", "reporter="} <= set(prefixes)
    assert {"suffix": "downstream_cx_active"} in patterns
    assert not any(p.startswith("cluster.outbound") for p in prefixes)
    more = stats_config(["listener."])["stats_matcher"]["inclusion_list"]["patterns"]
    assert {"prefix": "listener."} in more
    assert len(more) == len(patterns) + 1
