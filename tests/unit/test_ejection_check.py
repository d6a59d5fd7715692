"""`kind: ejection` judged on simulated traffic: an Envoy that ejects a pod after its
consecutive 5xx, and one that never does. The verdict function is pure, so the check's error
rates are measured by simulation here, without a mesh; one run through the fake backend checks
the plumbing (spec, cluster lookup, message)."""

from __future__ import annotations

import random
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from meshlab.backends.base import Outcome
from meshlab.backends.fake import FakeBackend
from meshlab.checks import load_checked_lab
from meshlab.checks.ejection import Sent, cause, expected_errors, judge, window_seconds
from meshlab.errors import InputError
from meshlab.mesh.request import ProbeRequest
from meshlab.pipeline import prepare, run_lab

LAB = Path(__file__).resolve().parents[2] / "labs" / "6-circuit-breaking"
CLUSTER = "outbound|8080||fleetman-staff-service.default.svc.cluster.local"
PODS = {"good": "safe", "bad": "risky"}


def outcome(pod: str) -> Outcome:
    status = 500 if pod == "bad" else 200
    return Outcome(status, pod, {"version": PODS[pod]}, upstream_cluster=CLUSTER)


def simulate(rng: random.Random, eject_after: int | None, n: int = 30, window: int = 20):  # type: ignore[no-untyped-def]
    """`n` phase-1 requests one 10 ms apart, then `window` more, over two pods picked at
    random (LEAST_REQUEST with equal load); the bad one ejected after `eject_after` errors."""
    sent, errors, at = [], 0, 0.0
    for _ in range(n + window):
        ejected = eject_after is not None and errors >= eject_after
        pod = "good" if ejected else rng.choice(["good", "bad"])
        errors += pod == "bad"
        at += 0.01
        sent.append(Sent(at, outcome(pod)))
    return sent


@pytest.fixture(scope="module")
def prepared():  # type: ignore[no-untyped-def]
    return prepare(LAB)


def test_error_rates_by_simulation(prepared) -> None:  # type: ignore[no-untyped-def]
    """2000 simulated runs each way: a mesh that ejects after 2 always passes (the analytic
    miss, the bad pod picked fewer than 2 times in 30, is 31/2^30), one that never ejects
    always fails, and one that ejects after 3 is told apart from 2."""
    (check,) = prepared.checks
    cluster = prepared.plan.clusters[CLUSTER]
    rng = random.Random(13)
    verdicts = {2: 0, None: 0, 3: 0}
    for eject_after in verdicts:
        for _ in range(2000):
            sent = simulate(rng, eject_after)
            verdicts[eject_after] += judge(check, check.spec, sent, None, cluster, 2, 0.1).passed
    assert verdicts == {2: 2000, None: 0, 3: 0}


def test_a_never_ejected_pod_is_named_with_the_cause(prepared) -> None:  # type: ignore[no-untyped-def]
    (check,) = prepared.checks
    cluster = prepared.plan.clusters[CLUSTER]
    cluster_without = type(cluster)(**{**cluster.__dict__, "outlier": None})
    sent = simulate(random.Random(1), None)
    result = judge(check, check.spec, sent, None, cluster_without, 2, 0.1)
    assert result.outcome == "fail"
    assert "bad (version=risky) answered 5xx" in result.message
    assert "never ejected" in result.message
    assert "sets no trafficPolicy.outlierDetection" in result.message


def test_no_failing_pod_is_a_failure_that_says_so(prepared) -> None:  # type: ignore[no-untyped-def]
    (check,) = prepared.checks
    sent = [Sent(i * 0.01, outcome("good")) for i in range(30)]
    result = judge(check, check.spec, sent, None, None, 2, 0.1)
    assert result.outcome == "fail"
    assert "no pod answered 5xx in 30 requests" in result.message


def test_causes_name_the_rule(prepared) -> None:  # type: ignore[no-untyped-def]
    cluster = prepared.plan.clusters[CLUSTER]
    assert cause(cluster, 2) == ""
    assert "ejects after 2 consecutive 5xx (consecutive5xxErrors is 2)" in cause(cluster, 3)
    # the window never reaches the end of the ejection (the pod's return is right)
    assert window_seconds(prepared.checks[0].spec, cluster) == 2.0


def test_a_percent_that_ejects_no_pod_expects_no_ejection(prepared) -> None:  # type: ignore[no-untyped-def]
    """Envoy ejects a host only while the ejected stay within maxEjectionPercent after it
    (envoyproxy/envoy#27909): Envoy's default 10% of the lab's 2 pods ejects none."""
    (check,) = prepared.checks
    cluster = prepared.plan.clusters[CLUSTER]
    assert cluster.outlier is not None
    default = replace(cluster, outlier=replace(cluster.outlier, max_ejection_percent=None))
    assert "maxEjectionPercent is unset" in cause(default, 2)
    assert "ejects none" in cause(default, 2)
    half = replace(cluster, outlier=replace(cluster.outlier, max_ejection_percent=50))
    assert cause(half, 2) == ""
    configured = check.spec.model_copy(update={"expect": "configured"})
    assert expected_errors(configured, default) is None
    assert expected_errors(configured, half) == 2


class _EjectingMesh:
    """The fake backend's responder: an Envoy that ejects the bad pod after 2 errors."""

    def __init__(self) -> None:
        self.errors = 0

    def __call__(self, request: ProbeRequest, rng: random.Random) -> Outcome:
        pod = "good" if self.errors >= 2 else rng.choice(["good", "bad"])
        self.errors += pod == "bad"
        return outcome(pod)


def test_the_lab_check_runs_through_a_backend(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    shutil.copytree(LAB, lab, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    text = (lab / "lab.yaml").read_text().replace("expect: {errors: 2}", "expect: configured")
    (lab / "lab.yaml").write_text(text + "    window: 100ms\n")
    (result,) = run_lab(lab, backend=FakeBackend(_EjectingMesh())).results
    assert result.outcome == "pass", result.message
    assert "ejected after 2 consecutive 5xx, then no traffic to it for 0.1 s" in result.message


def test_a_window_out_of_range_is_refused_at_its_line(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    shutil.copytree(LAB, lab, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (lab / "lab.yaml").write_text((lab / "lab.yaml").read_text() + "    window: 1m\n")
    with pytest.raises(InputError) as caught:
        load_checked_lab(lab)
    assert "window '1m' must be from 100ms to 20s" in str(caught.value)
