"""What `expect: configured` predicts for retries, faults and timeouts, against the shares
stated by hand (issue 13: a correct configuration never fails, a wrong one is caught); and the
broken-image facts the prediction uses agree with the stand-ins that play those images."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshlab.backends.embedded.standins import behaviour_for
from meshlab.backends.embedded.standins.server import PodSpec, Request
from meshlab.load.manifests import load_manifests
from meshlab.mesh.broken_images import BROKEN, broken_status
from meshlab.mesh.expect import ExpectedSplit, configured_split
from meshlab.mesh.model import DEFAULT_RETRY_ON, RetryPlan
from meshlab.mesh.plan import build_plan
from meshlab.mesh.request import ProbeRequest
from meshlab.mesh.retry_forecast import still_failing

ROOT = Path(__file__).resolve().parents[2]
STAFF = ROOT / "tests" / "data" / "latency" / "staff-bad-and-good.yaml"
URL = "http://fleetman-staff-service:8080/driver/City%20Truck"


def configured(tmp_path: Path, http: str) -> ExpectedSplit:
    files = [STAFF]
    if http:
        rules = tmp_path / "rules.yaml"
        rules.write_text(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
            "metadata: {name: fleetman-staff-service}\nspec:\n"
            "  hosts: [fleetman-staff-service]\n  http:\n  - route:\n"
            "    - destination: {host: fleetman-staff-service}\n" + http
        )
        files.append(rules)
    plan = build_plan(load_manifests(files, "default"), "default")
    return configured_split(plan, ProbeRequest(URL), "version")


@pytest.mark.parametrize(
    ("http", "shares"),
    [
        # Istio's default policy retries no answered status (retry.go: no codes listed)
        ("", {"safe": 0.5, "HTTP 500": 0.5}),
        ("    retries: {attempts: 3, retryOn: 5xx}\n", {"safe": 1.0}),
        ("    retries: {attempts: 2, retryOn: '500'}\n", {"safe": 1.0}),
        ("    retries: {attempts: 2, retryOn: 'connect-failure,500'}\n", {"safe": 1.0}),
        # 500 is no gateway error, and no retriable code is listed
        ("    retries: {attempts: 3, retryOn: gateway-error}\n", {"safe": 0.5, "HTTP 500": 0.5}),
        ("    retries: {attempts: 3, retryOn: '503'}\n", {"safe": 0.5, "HTTP 500": 0.5}),
        ("    retries: {attempts: 0}\n", {"safe": 0.5, "HTTP 500": 0.5}),
        # the same host again without the previous_hosts predicate: half of the retries
        (
            "    retries: {attempts: 1, retryOn: 5xx, retryIgnorePreviousHosts: false}\n",
            {"safe": 0.75, "HTTP 500": 0.25},
        ),
        # a fault abort first, the rest as retried
        (
            "    retries: {attempts: 3, retryOn: 5xx}\n"
            "    fault: {abort: {httpStatus: 503, percentage: {value: 20}}}\n",
            {"HTTP 503": 0.2, "safe": 0.8},
        ),
        # a fault delay or a timeout changes no share
        (
            "    timeout: 1s\n    fault: {delay: {fixedDelay: 0.5s, percentage: {value: 50}}}\n",
            {"safe": 0.5, "HTTP 500": 0.5},
        ),
    ],
)
def test_configured_matches_what_envoy_does(
    tmp_path: Path, http: str, shares: dict[str, float]
) -> None:
    expected = configured(tmp_path, http)
    assert {k: v for k, v in expected.shares.items() if v} == pytest.approx(shares)


def test_retried_shares_name_the_retry_policy(tmp_path: Path) -> None:
    expected = configured(tmp_path, "    retries: {attempts: 3, retryOn: 5xx}\n")
    whats = [s.what for s in expected.sources["safe"]]
    assert any("retries (5xx)" in w for w in whats)


def test_a_tiny_residual_is_predicted_as_none() -> None:
    retry = RetryPlan(attempts=1, retry_on="5xx")
    assert still_failing(retry, 500, 0.5, hashed=False) == pytest.approx(0.5**6)
    assert still_failing(RetryPlan(2, DEFAULT_RETRY_ON), 500, 0.5, hashed=False) == 1.0
    no_predicate = RetryPlan(attempts=2, retry_on="5xx", previous_hosts=False)
    assert still_failing(no_predicate, 500, 0.5, hashed=True) == 1.0  # the key picks it again
    assert still_failing(no_predicate, 500, 0.5, hashed=False) == pytest.approx(0.25)


@pytest.mark.parametrize(
    "spelling",
    [
        "richardchesterwood/istio-fleetman-staff-service:6-bad",
        "docker.io/richardchesterwood/istio-fleetman-staff-service:6-bad",
        "richardchesterwood/istio-fleetman-staff-service:6-bad@sha256:" + "0" * 64,
    ],
)
def test_broken_images_are_read_in_any_spelling(spelling: str) -> None:
    assert broken_status(spelling) == 500


def test_good_images_are_not_broken() -> None:
    assert broken_status("richardchesterwood/istio-fleetman-staff-service:6") is None
    assert broken_status("richardchesterwood/istio-fleetman-staff-service") is None


@pytest.mark.parametrize(("image", "status"), sorted(BROKEN.items()))
def test_the_stand_in_answers_what_the_table_says(image: tuple[str, str], status: int) -> None:
    name = f"{image[0]}:{image[1]}"
    pod = PodSpec("broken", "default", name, {}, (8080,))
    response = behaviour_for(name).handle(Request(pod, 8080, "GET", "/driver/City%20Truck"))
    assert response.status == status


def configured_with_outlier(tmp_path: Path, detection: str) -> ExpectedSplit:
    rules = tmp_path / "dr.yaml"
    rules.write_text(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        "metadata: {name: staff}\nspec:\n  host: fleetman-staff-service\n"
        f"  trafficPolicy:\n    outlierDetection: {detection}\n"
    )
    plan = build_plan(load_manifests([STAFF, rules], "default"), "default")
    return configured_split(plan, ProbeRequest(URL), "version")


@pytest.mark.parametrize(
    ("detection", "shares", "errors"),
    [
        # the course's rule: ejected after 2 errors, for 30 s: the steady state is all safe
        ("{consecutive5xxErrors: 2, maxEjectionPercent: 100}", {"safe": 1.0}, 2),
        # Envoy's default max_ejection_percent, 10%: 1 of 2 pods is 50%, so none is ejected
        ("{interval: 10s}", {"safe": 0.5, "HTTP 500": 0.5}, 0),
        ("{consecutive5xxErrors: 2, maxEjectionPercent: 49}", {"safe": 0.5, "HTTP 500": 0.5}, 0),
        # Envoy's default count: 5 errors
        ("{interval: 10s, maxEjectionPercent: 50}", {"safe": 1.0}, 5),
        # 0 turns the 5xx detector off; a 500 is no gateway error
        ("{consecutive5xxErrors: 0}", {"safe": 0.5, "HTTP 500": 0.5}, 0),
        (
            "{consecutive5xxErrors: 0, consecutiveGatewayErrors: 1}",
            {"safe": 0.5, "HTTP 500": 0.5},
            0,
        ),
        # the deprecated consecutiveErrors is ignored: Envoy's default 5 still ejects
        ("{consecutiveErrors: 1, maxEjectionPercent: 100}", {"safe": 1.0}, 5),
        # panic: 50% healthy is below minHealthPercent 60, so Envoy uses every host again
        (
            "{consecutive5xxErrors: 2, maxEjectionPercent: 100, minHealthPercent: 60}",
            {"safe": 0.5, "HTTP 500": 0.5},
            0,
        ),
    ],
)
def test_configured_predicts_the_ejected_steady_state(
    tmp_path: Path, detection: str, shares: dict[str, float], errors: int
) -> None:
    expected = configured_with_outlier(tmp_path, detection)
    assert {k: v for k, v in expected.shares.items() if v} == pytest.approx(shares)
    assert sum(f.errors for f in expected.ejections) == errors
    if errors:
        whats = [s.what for s in expected.sources["safe"]]
        assert any("outlierDetection" in w for w in whats)


def test_an_ejection_shorter_than_a_check_is_a_cause_not_a_prediction(tmp_path: Path) -> None:
    expected = configured_with_outlier(
        tmp_path,
        "{consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 1s, maxEjectionPercent: 100}",
    )
    assert expected.shares == pytest.approx({"safe": 0.5, "HTTP 500": 0.5})
    assert not expected.ejections
    (cause,) = expected.causes
    assert cause.bucket == "HTTP 500"
    assert "lets it back after 1 s" in cause.reason
    assert cause.location is not None
    assert cause.location.line == 1
