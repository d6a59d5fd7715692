"""Where a check's request starts (`request.from`) and bucketing by a hop of the chain
(`by: {service: ..., label: ...}`): validation at the line of the mistake, the bucketing
table, split and status checks judged at a hop on the fake backend, and their messages."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from meshlab.backends.base import Hop, Outcome
from meshlab.backends.fake import FakeBackend, by_origin, chain, weighted_pods
from meshlab.checks.hops import NOT_CALLED, hop_bucket, label_reader, service_host
from meshlab.checks.origins import client_plan, configured_for
from meshlab.checks.status import bucket_by
from meshlab.errors import BackendError, InputError, InputErrors
from meshlab.mesh.request import Origin, ProbeRequest
from meshlab.pipeline import prepare, run_lab
from meshlab.report.text import render_text
from staff_rules import INGRESS_GATEWAY, source_rules

REPO = Path(__file__).parents[2]
STAFF = "fleetman-staff-service.default.svc.cluster.local"
URL = "http://fleetman-staff-service:8080/driver/City%20Truck"

GATEWAY = INGRESS_GATEWAY

# The dark release's staff rule: the webapp's pods get risky, everyone else safe.
SOURCE_RULES = source_rules("webapp", api="v1beta1")

DARK = """\
  - name: dark-release
    kind: split
    request:
      url: http://fleetman.com/api/vehicles/driver/City%20Truck
      from: browser
      headers: {x-my-header: canary}
    by: {service: fleetman-staff-service, label: version}
    expect: {risky: 100}
"""


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    """The fleetman app of lab 2 with the course's ingress Gateway and a sourceLabels rule."""
    root = tmp_path / "mesh-lab"
    root.mkdir()
    shutil.copy(REPO / "labs" / "2-traffic" / "fleetman.yaml", root)
    (root / "gateway.yaml").write_text(GATEWAY)
    (root / "rules.yaml").write_text(SOURCE_RULES)
    return root


def write(
    root: Path, checks: str, manifests: str = "fleetman.yaml, gateway.yaml, rules.yaml"
) -> Path:
    (root / "lab.yaml").write_text(f"title: Hops\nmanifests: [{manifests}]\nchecks:\n{checks}")
    return root


def refused(root: Path) -> list[InputError]:
    with pytest.raises(InputError) as caught:
        prepare(root)
    exc = caught.value
    return list(exc.errors) if isinstance(exc, InputErrors) else [exc]


def one_error(root: Path) -> tuple[str, int]:
    [error] = refused(root)
    assert error.location is not None
    assert error.location.path.name == "lab.yaml"
    return str(error), error.location.line


def split_check(request: str, extra: str = "    expect: {safe: 90, risky: 10}\n") -> str:
    return f"  - name: c\n    kind: split\n    request:\n{request}{extra}"


# --- request.from: validated at its line ------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("from: moon", "'moon' is not where a request can start: mesh (the default), browser"),
        ("from: 3", "int is not where a request can start"),
        ("from: {}", 'missing required field "checks[0].request.from.workload"'),
        ("from: {workload: webapp, pod: x}", 'unknown field "checks[0].request.from.pod"'),
        ("from: {workload: Web_App}", "is not a Deployment or Pod name"),
        ("from: {workload: nope}", "no Deployment or Pod default/nope in the lab (workloads:"),
    ],
)
def test_a_wrong_origin_is_an_error_at_its_line(lab: Path, line: str, said: str) -> None:
    write(lab, split_check(f"      url: {URL}\n      {line}\n"))
    message, at = one_error(lab)
    assert said in message
    assert at == 8  # the `from:` line (or the key inside it)


def test_a_missing_workload_lists_the_labs_workloads(lab: Path) -> None:
    write(lab, split_check(f"      url: {URL}\n      from: {{workload: web-app}}\n"))
    message, _ = one_error(lab)
    assert "default/webapp" in message
    assert "default/staff-service-risky" in message
    assert "did you mean {workload: webapp}?" in message


def test_from_the_browser_needs_a_gateway_selecting_the_ingress_gateway(lab: Path) -> None:
    write(lab, DARK, manifests="fleetman.yaml, rules.yaml")
    message, at = one_error(lab)
    assert at == 8  # the `from:` line
    assert "no Gateway of the lab selects it" in message
    assert "selector: {istio: ingressgateway}" in message
    write(lab, DARK)
    assert prepare(lab).checks[0].spec.request.origin == Origin("browser")


def test_a_gateway_selecting_another_proxy_does_not_take_browser_requests(lab: Path) -> None:
    (lab / "gateway.yaml").write_text(GATEWAY.replace("ingressgateway", "egressgateway"))
    write(lab, DARK)
    assert "no Gateway of the lab selects it" in one_error(lab)[0]


def test_every_origin_reaches_the_probe(lab: Path) -> None:
    write(lab, split_check(f"      url: {URL}\n      from: {{workload: default/webapp}}\n"))
    assert prepare(lab).checks[0].spec.request.probe().origin == Origin(
        "workload", "default/webapp"
    )
    write(lab, split_check(f"      url: {URL}\n      from: no-sidecar\n"))
    assert prepare(lab).checks[0].spec.request.probe().origin == Origin("no-sidecar")
    write(lab, split_check(f"      url: {URL}\n"))
    assert prepare(lab).checks[0].spec.request.probe().origin == Origin()


# --- by: {service, label} ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("by", "said", "line"),
    [
        ("{service: fleetman-nope}", "no Service 'fleetman-nope' in the lab (Services:", 8),
        (
            "{service: fleetman-staff-service, lable: version}",
            'unknown field "checks[0].by.lable"',
            8,
        ),
        ("{label: version}", 'missing required field "checks[0].by.service"', 8),
        ("{service: Staff Service}", "is not a Service name", 8),
        ("''", "String should have at least 1 character", 8),
    ],
)
def test_a_wrong_hop_is_an_error_at_its_line(lab: Path, by: str, said: str, line: int) -> None:
    write(lab, split_check(f"      url: {URL}\n", f"    by: {by}\n    expect: {{risky: 1}}\n"))
    message, at = one_error(lab)
    assert said in message
    assert at == line


def test_configured_is_refused_where_meshlab_cannot_compute_it(lab: Path) -> None:
    write(lab, split_check(f"      url: {URL}\n", "    by: {service: fleetman-staff-service}\n"))
    message, at = one_error(lab)  # expect left out: configured is the default
    assert "configured is not available when the bucket is named at a hop" in message
    assert at == 4  # no `expect:` line: the check's own


# --- expect: configured from elsewhere ---------------------------------------------------------


def test_configured_from_a_workload_is_its_own_sidecars_plan(lab: Path) -> None:
    prepared = prepare(write(lab, split_check(f"      url: {URL}\n", "")))
    for origin, share in [(Origin("workload", "webapp"), "risky"), (Origin(), "safe")]:
        request = ProbeRequest(URL, origin=origin)
        plan = client_plan(origin, prepared.resources, prepared.plan)
        assert configured_for(request, "version", plan).shares == {share: 1.0}


def test_configured_from_the_browser_is_the_ingress_gateways_plan(lab: Path) -> None:
    browser = DARK.replace("    expect: {risky: 100}\n", "    expect: configured\n")
    prepared = prepare(
        write(lab, browser.replace("by: {service: fleetman-staff-service, label: version}", ""))
    )
    request = prepared.checks[0].spec.request.probe()
    plan = client_plan(request.origin, prepared.resources, prepared.plan)
    assert plan.gateway is not None  # the gateway's plan, not the client sidecar's
    assert configured_for(request, "version", plan).shares


def test_configured_without_a_sidecar_is_every_pod_alike(lab: Path) -> None:
    prepared = prepare(write(lab, split_check(f"      url: {URL}\n", "")))
    request = ProbeRequest(URL, origin=Origin("no-sidecar"))
    expected = configured_for(request, "version", prepared.plan)
    assert expected.shares == pytest.approx({"safe": 0.5, "risky": 0.5})
    assert "no client sidecar" in expected.route


def test_a_check_from_a_workload_is_judged_against_that_workloads_rules(lab: Path) -> None:
    request = f"      url: {URL}\n      from: {{workload: webapp}}\n"
    write(lab, split_check(request, ""))
    mesh_sees_safe = by_origin({"workload webapp": weighted_pods({"risky": 1})})
    report = run_lab(lab, backend=FakeBackend(mesh_sees_safe))
    assert report.results[0].passed, report.results[0].message
    assert report.results[0].expected == {"risky": 1.0}
    first = report.results[0].message.splitlines()[0]
    assert first.startswith("c (from workload webapp) passed: ")
    wrong = FakeBackend(by_origin({"workload webapp": weighted_pods({"safe": 1})}))
    assert not run_lab(lab, backend=wrong).results[0].passed


# --- the bucketing table -----------------------------------------------------------------------

WEBAPP = "fleetman-webapp.default.svc.cluster.local"
GATEWAY_API = "fleetman-api-gateway.default.svc.cluster.local"


def _hop(
    service: str, depth: int, status: int | None = 200, pod: str | None = "p", **kw: str
) -> Hop:
    labels = {"version": kw.get("version", "safe")}
    return Hop(service, pod, labels, status, kw.get("flags", "-"), None, depth, "/")


SERVED = Outcome(
    200, "web", {}, hops=(_hop(WEBAPP, 1), _hop(GATEWAY_API, 2), _hop(STAFF, 3, version="risky"))
)
FAILED_AT_2 = Outcome(
    503,
    "web",
    {},
    hops=(_hop(WEBAPP, 1, 503), _hop(GATEWAY_API, 2, 503, None, flags="UF")),
)
NOT_CALLING = Outcome(200, "web", {}, hops=(_hop(WEBAPP, 1), _hop(GATEWAY_API, 2)))
FAILED_AT_IT = Outcome(
    500, "web", {}, hops=(_hop(WEBAPP, 1, 500), _hop(STAFF, 2, 500, "staff-bad", version="bad"))
)
NO_HOPS = Outcome(503, None, {}, response_flags="NR")


@pytest.mark.parametrize(
    ("outcome", "origin", "bucket"),
    [
        (SERVED, Origin(), "risky"),
        (FAILED_AT_2, Origin(), "HTTP 503 at fleetman-api-gateway (UF)"),
        (NOT_CALLING, Origin(), NOT_CALLED),
        (FAILED_AT_IT, Origin(), "HTTP 500 at fleetman-staff-service"),
        (NO_HOPS, Origin("browser"), "HTTP 503 at istio-ingressgateway (NR)"),
        (Outcome(None, error="ConnectError"), Origin(), "no response at ?"),
    ],
)
def test_hop_buckets(outcome: Outcome, origin: Origin, bucket: str) -> None:
    assert hop_bucket(outcome, STAFF, "default", label_reader("version"), origin) == bucket


def test_status_counts_what_the_hop_answered_its_caller() -> None:
    status = bucket_by("status")
    assert hop_bucket(FAILED_AT_IT, STAFF, "default", status) == "500"
    assert hop_bucket(SERVED, STAFF, "default", bucket_by("class")) == "2xx"
    assert (
        hop_bucket(FAILED_AT_2, STAFF, "default", status) == "HTTP 503 at fleetman-api-gateway (UF)"
    )


@pytest.mark.parametrize(
    "spelt",
    [
        "fleetman-staff-service",
        "fleetman-staff-service.default",
        STAFF,
        "fleetman-staff-service:8080",
    ],
)
def test_a_service_is_found_however_it_is_spelt(spelt: str) -> None:
    assert service_host(spelt, "default") == STAFF
    assert service_host(spelt, "other") != STAFF or "." in spelt


# --- split and status checks at a hop, on the fake backend -------------------------------------

THROUGH = [("fleetman-webapp", {"original": 1}), ("fleetman-api-gateway", {"safe": 1})]


def test_the_dark_release_passes_when_the_header_reaches_the_risky_staff(lab: Path) -> None:
    write(lab, DARK)
    risky = chain([*THROUGH, ("fleetman-staff-service", {"risky": 1})])
    report = run_lab(lab, backend=FakeBackend(by_origin({"browser": risky})))
    result = report.results[0]
    assert result.passed, result.message
    assert result.observed == {"risky": result.requests}
    first = result.message.splitlines()[0]
    assert first.startswith(
        "dark-release (from the browser through istio-ingressgateway, by version at "
        "fleetman-staff-service) passed: risky got 100.0%"
    )
    data = report.model().model_dump(mode="json")["checks"][0]
    assert data["request"]["origin"] == "browser"
    assert (data["by"], data["by_service"]) == ("version", "fleetman-staff-service")


def test_a_lost_header_fails_and_says_it_must_travel(lab: Path) -> None:
    write(lab, DARK)
    safe = chain([*THROUGH, ("fleetman-staff-service", {"safe": 1})])
    result = run_lab(lab, backend=FakeBackend(by_origin({"browser": safe}))).results[0]
    assert not result.passed
    assert "FAILED: safe for 10 of 10 requests (100.0%), expected none" in result.message
    assert "note: a header (x-my-header) routes a hop after the first only if" in result.message


def test_a_broken_chain_fails_and_names_the_hop_that_failed(lab: Path) -> None:
    write(lab, DARK)
    broken = chain(
        [("fleetman-webapp", {"original": 1}), ("fleetman-api-gateway", {"HTTP 503 UF": 1})]
    )
    result = run_lab(lab, backend=FakeBackend(by_origin({"browser": broken}))).results[0]
    assert not result.passed
    bucket = "HTTP 503 at fleetman-api-gateway (UF)"
    assert result.observed == {bucket: result.requests}
    assert (
        f"the chain failed at fleetman-api-gateway for {result.requests} of {result.requests} "
        "requests (HTTP 503, Envoy flags UF); the request never reached fleetman-staff-service"
    ) in result.message
    assert bucket in render_text(
        run_lab(lab, backend=FakeBackend(by_origin({"browser": broken}))).model()
    )


def test_a_service_never_called_is_its_own_bucket(lab: Path) -> None:
    write(lab, DARK)
    short = chain(THROUGH)
    result = run_lab(lab, backend=FakeBackend(by_origin({"browser": short}))).results[0]
    assert result.observed == {NOT_CALLED: result.requests}
    assert "fleetman-staff-service was not called for" in result.message


def test_a_status_check_judges_the_answers_at_a_hop(lab: Path) -> None:
    check = (
        "  - name: staff-faults\n    kind: status\n    request:\n"
        "      url: http://fleetman-api-gateway:8080/vehicles/driver/City%20Truck\n"
        "      from: {workload: webapp}\n"
        "    by: {service: fleetman-staff-service, by: status}\n"
        "    expect: {200: 50, 503: 50}\n"
    )
    write(lab, check)
    half = chain(
        [
            ("fleetman-api-gateway", {"safe": 1}),
            ("fleetman-staff-service", {"safe": 1, "HTTP 503 FI": 1}),
        ]
    )
    result = run_lab(
        lab, backend=FakeBackend(by_origin({"workload webapp": half}), seed=3)
    ).results[0]
    assert result.passed, result.message
    assert set(result.observed) == {"200", "503"}  # the api-gateway passed 503 on: counted at staff
    assert "(from workload webapp, by status at fleetman-staff-service)" in result.message


def test_status_at_a_hop_accepts_hop_buckets_and_refuses_other_keys(lab: Path) -> None:
    check = (
        "  - name: s\n    kind: status\n    request:\n      url: " + URL + "\n"
        "    by: {service: fleetman-staff-service}\n"
        '    expect: {200: 9, "not called": 0, "HTTP 503 at fleetman-api-gateway (UF)": 1}\n'
    )
    write(lab, check)
    prepare(lab)
    write(lab, check.replace('"not called"', "safe"))
    message, at = one_error(lab)
    assert "'safe' is not an HTTP status" in message
    assert '"not called" those that' in message
    assert at in (4, 9)  # the check, or its `expect:`


# --- the fake backend honours origins ------------------------------------------------------------


def test_the_fake_refuses_an_origin_the_lab_does_not_have(lab: Path) -> None:
    prepared = prepare(write(lab, split_check(f"      url: {URL}\n", "")))
    backend = FakeBackend(weighted_pods({"safe": 1}))
    with backend.deploy(prepared.to_deploy()) as mesh:
        assert mesh.send(ProbeRequest(URL, origin=Origin("workload", "webapp")), 1)[0].status == 200
        assert mesh.sent[0].origin == Origin("workload", "webapp")
        with pytest.raises(BackendError, match="no workload ghost"):
            mesh.send(ProbeRequest(URL, origin=Origin("workload", "ghost")), 1)
    with pytest.raises(BackendError, match="no answer for requests browser"):
        by_origin({})(ProbeRequest(URL, origin=Origin("browser")), random.Random(0))


def test_a_chain_passes_a_failure_up_to_every_caller() -> None:
    outcome = chain([("a", {"v1": 1}), ("b", {"v1": 1}), ("c", {"HTTP 503 UH": 1})])(
        ProbeRequest(URL), random.Random(0)
    )
    assert [(h.depth, h.status, h.response_flags, h.caller) for h in outcome.hops] == [
        (1, 503, "-", None),
        (2, 503, "-", "a-v1"),
        (3, 503, "UH", "b-v1"),
    ]
    assert (outcome.status, outcome.pod) == (503, "a-v1")


# --- the docs' example ---------------------------------------------------------------------------


def test_the_lab_format_pages_dark_release_example_is_a_valid_check(lab: Path) -> None:
    page = (REPO / "docs" / "reference" / "lab-format.md").read_text()
    start = page.index("  - name: dark-release\n")
    example = page[start : page.index("```", start)]
    write(lab, example)
    [check] = prepare(lab).checks
    assert check.spec.hop == "fleetman-staff-service"
    assert check.spec.request.origin == Origin("browser")
    assert json.loads(json.dumps(check.spec.expect)) == {"risky": 100}


def test_a_header_match_the_request_does_not_carry_is_named_with_its_line(tmp_path: Path) -> None:
    from meshlab.checks.hops import hop_failure_lines, unmatched_headers
    from meshlab.load.manifests import load_manifests

    rules = tmp_path / "dark.yaml"
    text = (REPO / "tests" / "data" / "whole" / "dark.yaml").read_text()
    rules.write_text(text.replace("x-my-header:", "x-my-heder:"))
    resources = load_manifests([rules], "default")
    sent = {"x-my-header": "canary"}
    (line,) = unmatched_headers(resources, "fleetman-staff-service", "default", sent)
    assert "matches header 'x-my-heder' (dark.yaml:15)" in line
    assert "it sends x-my-header" in line
    assert (
        unmatched_headers(resources, "fleetman-staff-service", "default", {"x-my-heder": "1"}) == []
    )
    # the propagation note only when the hop answered (as the wrong build), not when it failed
    failed = hop_failure_lines(
        [("HTTP 503 at fleetman-staff-service (NC)", 5)], 5, "fleetman-staff-service", sent
    )
    assert not any("propagate" in x for x in failed)
    answered = hop_failure_lines([("safe", 5)], 5, "fleetman-staff-service", sent)
    assert any("propagate" in x for x in answered)
