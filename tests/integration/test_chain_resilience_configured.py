"""`expect: configured` behind the first hop, on a real Envoy: the api-gateway's call to a
staff service with a broken pod (lab 6's app) fails half the time, unless the staff route
retries 5xx or the staff DestinationRule ejects the broken pod (then the check meets the
ejecting errors in its warm-up)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lab_runs import check_results
from meshlab.backends.embedded.backend import EmbeddedBackend
from meshlab.checks import CheckResult
from staff_rules import HOST, virtual_service

pytestmark = pytest.mark.envoy

ROOT = Path(__file__).resolve().parents[2]
LAB6 = ROOT / "labs" / "6-circuit-breaking"
URL = "http://fleetman-api-gateway:8080/vehicles/driver/City%20Truck"
CHECK = f"  - name: driver\n    kind: split\n    request: {{url: '{URL}'}}\n"
RETRIES = virtual_service(
    f"  - route:\n    - destination: {{host: {HOST}}}\n    retries: {{attempts: 3, retryOn: 5xx}}\n"
)


def run(tmp_path: Path, backend: EmbeddedBackend, rules: dict[str, str]) -> CheckResult:
    lab = tmp_path / "lab"
    lab.mkdir(parents=True)
    shutil.copy(LAB6 / "fleetman.yaml", lab / "fleetman.yaml")
    for name, text in rules.items():
        (lab / name).write_text(text)
    files = ", ".join(["fleetman.yaml", *rules])
    (lab / "lab.yaml").write_text(f"title: chain\nmanifests: [{files}]\nchecks:\n{CHECK}")
    (result,) = check_results(lab, backend).values()
    return result


def test_a_broken_pod_behind_the_first_hop_fails_half_the_calls(
    tmp_path: Path, backend: EmbeddedBackend
) -> None:
    result = run(tmp_path, backend, {})
    assert result.expected == pytest.approx({"safe": 0.5, "HTTP 500": 0.5})
    assert result.outcome == "pass", result.message


def test_retries_behind_the_first_hop_hide_the_broken_pod(
    tmp_path: Path, backend: EmbeddedBackend
) -> None:
    result = run(tmp_path, backend, {"retries.yaml": RETRIES})
    assert result.expected == pytest.approx({"safe": 1.0})
    assert result.outcome == "pass", result.message


def test_an_ejection_behind_the_first_hop_is_met_in_the_warm_up(
    tmp_path: Path, backend: EmbeddedBackend
) -> None:
    rule = (LAB6 / "circuit-breaker.yaml").read_text()
    result = run(tmp_path, backend, {"circuit-breaker.yaml": rule})
    assert result.expected == pytest.approx({"safe": 1.0})
    assert result.outcome == "pass", result.message
    assert result.details["warmup"]["errors"] == 2
