"""`kind: overflow` judged on made-up outcomes (the verdict is pure), and the pool's capacity
as the plan reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshlab.backends.base import Outcome
from meshlab.checks.overflow import capacity, judge
from meshlab.pipeline import PreparedLab, prepare

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pool-overflow"
CLUSTER = "outbound|8080||fleetman-staff-service.default.svc.cluster.local"
SERVED = Outcome(200, "staff-1", {"version": "safe"}, upstream_cluster=CLUSTER)
OVERFLOW = Outcome(503, None, response_flags="UO", upstream_cluster=CLUSTER)


@pytest.fixture(scope="module")
def prepared() -> PreparedLab:
    return prepare(EXAMPLE)


def test_the_pool_of_one_admits_one(prepared: PreparedLab) -> None:
    assert capacity(prepared.plan.clusters[CLUSTER]) == 1


def test_expect_overflow_needs_a_bare_503_uo(prepared: PreparedLab) -> None:
    check = prepared.checks[0]
    cluster = prepared.plan.clusters[CLUSTER]
    assert judge(check, check.spec, [SERVED, OVERFLOW], cluster).passed
    none = judge(check, check.spec, [SERVED] * 5, cluster)
    assert none.outcome == "fail"
    assert "0 of 5 requests at concurrency 8 overflowed" in none.message
    retried = Outcome(503, None, response_flags="UO,URX", upstream_cluster=CLUSTER)
    assert "not a bare 503 UO" in judge(check, check.spec, [retried], cluster).message


def test_configured_within_the_pool_fails_on_any_overflow(prepared: PreparedLab) -> None:
    check = prepared.checks[1]  # concurrency 1: within the pool
    cluster = prepared.plan.clusters[CLUSTER]
    assert judge(check, check.spec, [SERVED] * 5, cluster).passed
    failed = judge(check, check.spec, [SERVED, OVERFLOW], cluster)
    assert failed.outcome == "fail"
    assert f"{CLUSTER} admits 1 at once" in failed.message


def test_configured_above_the_pool_is_inconclusive_without_overflow(
    prepared: PreparedLab,
) -> None:
    check = prepared.checks[1]
    spec = check.spec.model_copy(update={"concurrency": 4})
    result = judge(check, spec, [SERVED] * 5, prepared.plan.clusters[CLUSTER])
    assert (result.outcome, result.passed) == ("inconclusive", False)
    assert "possible, not certain" in result.message


def test_without_a_pool_istio_admits_everything(prepared: PreparedLab) -> None:
    check = prepared.checks[1]
    spec = check.spec.model_copy(update={"concurrency": 64})
    result = judge(check, spec, [SERVED] * 5, None)
    assert result.passed
    assert "Istio's default, unlimited" in result.message
