"""Outlier detection on a real Envoy: the course's broken staff pod (6-bad) next to a good
one. With the course's DestinationRule the callers' sidecar ejects it after 2 errors;
without it, it keeps about half the traffic (requests one at a time: LEAST_REQUEST with equal
load picks either pod)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from meshlab.backends.base import LabToDeploy, Outcome
from meshlab.backends.embedded.backend import EmbeddedBackend
from meshlab.load.manifests import load_manifests
from meshlab.mesh.plan import build_plan
from meshlab.mesh.request import ProbeRequest
from meshlab.pipeline import run_lab

pytestmark = pytest.mark.envoy

LAB = Path(__file__).resolve().parents[2] / "labs" / "6-circuit-breaking"
URL = "http://fleetman-staff-service:8080/driver/City%20Truck"


def traffic(backend: EmbeddedBackend, files: list[Path], n: int) -> list[Outcome]:
    """`n` requests one after another; a short pause after a 5xx lets Envoy's main thread
    eject the host before the next request is routed."""
    resources = load_manifests(files, "default")
    lab = LabToDeploy("outlier", "default", tuple(resources), build_plan(resources, "default"))
    outcomes = []
    with backend.deploy(lab) as mesh, mesh.session() as session:
        for _ in range(n):
            [outcome] = session.send(ProbeRequest(URL), 1)
            outcomes.append(outcome)
            if outcome.status and outcome.status >= 500:
                time.sleep(0.05)
    return outcomes


def test_the_bad_pod_is_ejected_after_two_errors(backend: EmbeddedBackend) -> None:
    outcomes = traffic(backend, [LAB / "fleetman.yaml", LAB / "circuit-breaker.yaml"], 60)
    served = Counter((o.labels.get("version"), o.status) for o in outcomes)
    # the bad pod is picked fewer than 2 times in 60 with probability 61/2^60
    assert served[("risky", 500)] == 2, served
    assert served[("safe", 200)] == 58, served
    last_error = max(i for i, o in enumerate(outcomes) if o.status == 500)
    assert all(o.labels.get("version") == "safe" for o in outcomes[last_error + 1 :])


def test_without_outlier_detection_the_bad_pod_keeps_half(backend: EmbeddedBackend) -> None:
    outcomes = traffic(backend, [LAB / "fleetman.yaml"], 80)
    errors = sum(o.status == 500 and o.labels.get("version") == "risky" for o in outcomes)
    # Binomial(80, 1/2): outside 20..60 with probability below 1e-5
    assert 20 <= errors <= 60, errors
    assert {o.response_flags for o in outcomes} == {"-"}  # a pod's own 500: no flag, no retry


POOL = Path(__file__).resolve().parents[1] / "examples" / "pool-overflow"


def test_a_pool_of_one_overflows_under_eight_clients_and_not_under_one() -> None:
    """Measured on Envoy 1.40: 60-85% of the 200 requests overflow; all of them missing
    would need no two of eight clients ever to overlap inside Envoy."""
    report = run_lab(POOL)
    assert [r.outcome for r in report.results] == ["pass", "pass"], [
        r.message for r in report.results
    ]
    assert report.results[0].details["overflowed"] > 0
