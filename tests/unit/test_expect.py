"""`configured_split`: what the configuration asks for one request, and why the mesh may not
deliver it (missing subset -> NC, subset without pods -> UH, no route -> 404 NR)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from meshlab.load.manifests import load_manifests
from meshlab.mesh.expect import ExpectedSplit, configured_split
from meshlab.mesh.plan import MeshPlan, build_plan
from meshlab.mesh.request import ProbeRequest
from staff_rules import virtual_service

ROOT = Path(__file__).resolve().parents[2]
LAB2 = ROOT / "labs" / "2-traffic"
DATA = ROOT / "tests" / "data" / "mesh"
APPS = DATA / "apps.yaml"
URL = "http://fleetman-staff-service:8080/driver/City%20Truck"
VS_REF = "VirtualService default/fleetman-staff-service"


def plan_of(*files: Path) -> MeshPlan:
    return build_plan(load_manifests(list(files), "default"), "default")


def split(plan: MeshPlan, url: str = URL, **headers: str) -> ExpectedSplit:
    request = ProbeRequest(url, headers={k.replace("_", "-"): v for k, v in headers.items()})
    return configured_split(plan, request, "version")


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def write_vs(tmp_path: Path, http: str) -> Path:
    """rules.yaml with a VirtualService for the staff service whose `http` list is `http`."""
    rules = textwrap.indent(textwrap.dedent(http).strip("\n") + "\n", "  ")
    return write(tmp_path, virtual_service(rules))


def line_of(path: Path, text: str) -> int:
    """1-based line of the only line of `path` containing `text`."""
    [line] = [i for i, s in enumerate(path.read_text().splitlines(), 1) if text in s]
    return line


def test_lab2_configured_split_is_90_10_from_the_vs_weights() -> None:
    rules = LAB2 / "istio-rules.yaml"
    expected = split(plan_of(LAB2 / "fleetman.yaml", rules))
    assert expected.shares == pytest.approx({"safe": 0.9, "risky": 0.1})
    assert expected.causes == []
    assert VS_REF in expected.route
    for bucket, weight in (("safe", 90), ("risky", 10)):
        [source] = expected.sources[bucket]
        assert source.what == VS_REF
        assert source.weight == weight
        assert source.location is not None
        assert source.location.path.name == "istio-rules.yaml"
        assert source.location.line == line_of(rules, f"weight: {weight}")
        assert str(source) == f"{VS_REF}, istio-rules.yaml:{source.location.line}"


def test_missing_subset_is_asked_for_and_explained_as_nc() -> None:
    rules = DATA / "missing-subset.yaml"
    expected = split(plan_of(APPS, rules))
    assert expected.shares == pytest.approx({"safe": 0.6, "canary": 0.4})
    [cause] = expected.causes
    assert cause.bucket == "canary"
    assert cause.flags == "NC"
    assert cause.effect == "503 NC (no cluster)"
    assert '"canary"' in cause.reason
    assert "(defined: safe, risky)" in cause.reason
    assert cause.location is not None
    # the line to fix, where the analysis (IST0101) points too: the subset, not its weight
    assert cause.location.line == line_of(rules, "subset: canary")


def test_missing_subset_without_any_destination_rule(tmp_path: Path) -> None:
    rules = write_vs(
        tmp_path,
        """
          - route:
            - destination: {host: fleetman-staff-service, subset: safe}
        """,
    )
    [cause] = split(plan_of(APPS, rules)).causes
    assert cause.flags == "NC"
    assert "no DestinationRule defines subsets" in cause.reason


def test_subset_selecting_no_pods_is_explained_as_uh() -> None:
    rules = DATA / "no-pods-subset.yaml"
    expected = split(plan_of(APPS, rules))
    assert expected.shares == pytest.approx({"experimental": 1.0})
    [cause] = expected.causes
    assert cause.flags == "UH"
    assert cause.effect == "503 UH (no healthy upstream)"
    assert 'subset "experimental"' in cause.reason
    assert "version=experimental" in cause.reason
    assert "selects no pods" in cause.reason
    assert cause.location is not None
    assert cause.location.path.name == "no-pods-subset.yaml"


def test_request_no_route_matches_is_404_nr() -> None:
    plan = plan_of(APPS, DATA / "uri-prefix.yaml")
    expected = split(plan, "http://fleetman-staff-service:8080/vehicles")
    # what was asked (the service) is expected, so the 404s the mesh answers fail the check
    assert expected.shares == {"fleetman-staff-service": 1.0}
    [cause] = expected.causes
    assert cause.flags == "NR"
    assert cause.effect == "404 NR (no route)"
    assert "GET /vehicles" in cause.reason
    assert "no route matches" in expected.route
    # the prefix route itself spreads over both pods of the Service (no subsets)
    assert split(plan).shares == pytest.approx({"safe": 0.5, "risky": 0.5})


def test_header_match_selects_a_different_route() -> None:
    plan = plan_of(APPS, DATA / "header-canary.yaml")
    jason = split(plan, end_user="jason")
    assert jason.shares == {"risky": 1.0}
    assert "route tester" in jason.route
    everyone = split(plan)
    assert everyone.shares == {"safe": 1.0}
    assert "route everyone" in everyone.route
    assert split(plan, end_user="JASON").shares == {"safe": 1.0}  # exact is case-sensitive


def test_without_headers_follows_envoys_missing_as_empty_rule(tmp_path: Path) -> None:
    rules = write_vs(
        tmp_path,
        """
          - name: never
            match:
            - withoutHeaders:
                x-debug: {regex: ".*"}
            route:
            - destination: {host: fleetman-staff-service, subset: risky}
          - name: untraced
            match:
            - withoutHeaders:
                x-trace: {}
            route:
            - destination: {host: fleetman-staff-service, subset: safe}
        """,
    )
    plan = plan_of(APPS, DATA / "header-canary.yaml", rules)
    # invert_match + treat_missing_header_as_empty: an absent header reads as "", which
    # matches ".*", so the inverted matcher fails (checked against Envoy 1.40)
    assert "route untraced" in split(plan).route
    assert "route untraced" in split(plan, x_debug="1").route
    # the present form: true iff the header is absent
    assert split(plan, x_trace="1").causes[0].flags == "NR"


def test_fault_abort_percentage_gives_an_http_status_share(tmp_path: Path) -> None:
    rules = write_vs(
        tmp_path,
        """
          - fault:
              abort:
                httpStatus: 503
                percentage: {value: 25}
            route:
            - destination: {host: fleetman-staff-service}
        """,
    )
    expected = split(plan_of(APPS, rules))
    assert expected.shares == pytest.approx({"HTTP 503": 0.25, "safe": 0.375, "risky": 0.375})
    [source] = expected.sources["HTTP 503"]
    assert source.what == f"{VS_REF} fault.abort"


def test_fault_abort_everything() -> None:
    expected = split(plan_of(APPS, DATA / "fault-abort.yaml"))
    shares = {bucket: share for bucket, share in expected.shares.items() if share}
    assert shares == pytest.approx({"HTTP 502": 1.0})


def test_replicas_spread_the_share_over_pods(tmp_path: Path) -> None:
    apps = tmp_path / "apps.yaml"
    apps.write_text(APPS.read_text().replace("replicas: 1", "replicas: 2", 1))
    plan = plan_of(apps)
    assert len(plan.registry.pods) == 3
    expected = split(plan)
    assert expected.shares == pytest.approx({"safe": 2 / 3, "risky": 1 / 3})
    assert "Service default/fleetman-staff-service" in expected.route


def test_dotted_destination_host_is_no_service(tmp_path: Path) -> None:
    rules = write_vs(
        tmp_path,
        """
          - route:
            - destination: {host: fleetman-staff-service.default}
        """,
    )
    expected = split(plan_of(APPS, rules))
    assert expected.shares == {"fleetman-staff-service.default": 1.0}
    [cause] = expected.causes
    assert cause.flags == "NC"


def test_unknown_host_or_port_expects_the_host_and_says_why_not() -> None:
    plan = plan_of(APPS)
    unknown = split(plan, "http://nosuch:8080/")
    assert unknown.shares == {"nosuch": 1.0}
    assert unknown.causes[0].effect == "no response"
    wrong_port = split(plan, "http://fleetman-staff-service:9999/")
    assert wrong_port.shares == {"fleetman-staff-service": 1.0}
    assert "port 9999" in wrong_port.causes[0].reason
