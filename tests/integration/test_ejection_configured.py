"""`expect: configured` under outlier detection, on a real Envoy: the broken pod's errors
before its ejection are met in the warm-up and not judged, then the steady state the
configuration predicts holds (issue 13: a correct configuration never fails; a wrong
expectation is still caught)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lab_runs import check_results
from meshlab.backends.embedded.backend import EmbeddedBackend
from meshlab.checks import CheckResult

pytestmark = pytest.mark.envoy

ROOT = Path(__file__).resolve().parents[2]
STAFF = ROOT / "tests" / "data" / "latency" / "staff-bad-and-good.yaml"
DRIVER = "http://fleetman-staff-service:8080/driver/City%20Truck"
CHECKS = f"""\
  - name: split-configured
    kind: split
    request: {{url: "{DRIVER}"}}
  - name: answers
    kind: status
    request: {{url: "{DRIVER}"}}
    expect: ANSWERS
"""


def run(
    tmp_path: Path, backend: EmbeddedBackend, detection: str, answers: str
) -> dict[str, CheckResult]:
    lab = tmp_path / "lab"
    lab.mkdir(parents=True)
    shutil.copy(STAFF, lab / STAFF.name)
    (lab / "dr.yaml").write_text(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        "metadata: {name: staff}\nspec:\n  host: fleetman-staff-service\n"
        f"  trafficPolicy:\n    outlierDetection: {detection}\n"
    )
    checks = CHECKS.replace("ANSWERS", answers)
    (lab / "lab.yaml").write_text(
        f"title: ejection\nmanifests: [{STAFF.name}, dr.yaml]\nchecks:\n{checks}"
    )
    return check_results(lab, backend)


def test_the_broken_pod_is_met_then_gone_and_configured_passes(
    tmp_path: Path, backend: EmbeddedBackend
) -> None:
    results = run(
        tmp_path, backend, "{consecutive5xxErrors: 2, maxEjectionPercent: 100}", "{200: 100}"
    )
    split = results["split-configured"]
    assert split.outcome == "pass", split.message
    assert split.expected == pytest.approx({"safe": 1.0})
    assert split.details["warmup"]["errors"] == 2  # met in the warm-up, not judged
    assert split.observed == {"safe": split.requests}
    assert "warm-up (not judged)" in split.message
    # the status check meets an already ejected pod: its warm-up sees no error, judges 200s
    answers = results["answers"]
    assert answers.outcome == "pass", answers.message
    assert answers.details["warmup"]["errors"] == 0


def test_without_ejection_the_broken_pod_keeps_its_half_and_a_claim_of_none_fails(
    tmp_path: Path, backend: EmbeddedBackend
) -> None:
    results = run(tmp_path, backend, "{consecutive5xxErrors: 0}", "{200: 100}")
    split = results["split-configured"]
    assert split.outcome == "pass", split.message
    assert split.expected == pytest.approx({"safe": 0.5, "HTTP 500": 0.5})
    assert "warmup" not in split.details
    assert results["answers"].outcome == "fail", results["answers"].message


def test_an_ejecting_rule_fails_a_claim_that_the_broken_pod_keeps_answering(
    tmp_path: Path, backend: EmbeddedBackend
) -> None:
    rule = "{consecutive5xxErrors: 2, maxEjectionPercent: 50}"
    results = run(tmp_path, backend, rule, "{200: 50, 500: 50}")
    assert results["split-configured"].outcome == "pass", results["split-configured"].message
    answers = results["answers"]
    assert answers.outcome == "fail", answers.message
    assert "500" in answers.message


def test_envoys_default_ejection_percent_ejects_neither_of_two_pods(
    tmp_path: Path, backend: EmbeddedBackend
) -> None:
    # max_ejection_percent 10 by default: ejecting 1 of 2 pods (50%) exceeds it
    results = run(tmp_path, backend, "{consecutive5xxErrors: 2}", "{200: 50, 500: 50}")
    for result in results.values():
        assert result.outcome == "pass", result.message
        assert "warmup" not in result.details
