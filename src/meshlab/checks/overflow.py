"""`kind: overflow`: a DestinationRule's connectionPool under concurrent load. Requests
beyond the circuit breakers' limits are answered 503 with Envoy's flag `UO` by the caller's
sidecar, and never retried (envoy source/common/router/retry_state_impl.cc: an overflow is
not retriable); within the limits no request overflows.

Design. `concurrency` clients (threads, each its own session, so its own connection) send
`requests` in all, each one request at a time, as fast as they can. `expect: overflow`
passes when at least one request got 503 UO and every UO is a bare one (no retry flag);
`expect: no-overflow` when none did;
`expect: configured` reads the pool of the cluster the requests reach, which admits
min(http2MaxRequests, maxConnections + http1MaxPendingRequests) requests at once (HTTP/1.1:
one request per connection at a time): within it no request may overflow. Above it overflow
is possible, not certain (the stand-ins answer in about a millisecond, so requests must
overlap inside Envoy; measured: a pool of 1 under 8 clients overflows 60-85% of 200 requests,
a pool of 2 under 3 clients none of 400), so `configured` says "inconclusive" when none
did rather than fail a correct configuration; `expect: overflow` states it as the goal.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from pydantic import Field

from meshlab.backends.base import Outcome
from meshlab.checks.base import Check, CheckContext, CheckKind, CheckResult, register
from meshlab.checks.origins import client_plan
from meshlab.checks.request import RequestedSpec
from meshlab.checks.stats import Design
from meshlab.mesh.plan import ClusterPlan, MeshPlan

OVERFLOW_FLAG = "UO"


class OverflowSpec(RequestedSpec):
    kind: Literal["overflow"]
    concurrency: int = Field(default=8, ge=1, le=64)
    requests: int = Field(default=200, ge=1, le=10000)
    expect: Literal["overflow", "no-overflow", "configured"] = "configured"


def capacity(cluster: ClusterPlan) -> int:
    """How many requests the pool admits at once (HTTP/1.1: connections plus the queue,
    capped by the concurrent request limit)."""
    pool = cluster.pool
    return min(pool.max_requests, pool.max_connections + pool.max_pending_requests)


def _cluster(plan: MeshPlan, outcomes: list[Outcome]) -> ClusterPlan | None:
    names = Counter(o.upstream_cluster.split("~")[-1] for o in outcomes if o.upstream_cluster)
    for name, _ in names.most_common():
        if name in plan.clusters:
            return plan.clusters[name]
    return None


@register
class OverflowKind(CheckKind):
    kind = "overflow"
    spec_model = OverflowSpec

    def planned_requests(
        self, check: Check, plan: MeshPlan, design: Design, override: int | None, limit: int
    ) -> int | None:
        spec: OverflowSpec = check.spec
        return spec.requests

    def run(self, check: Check, context: CheckContext) -> CheckResult:
        spec: OverflowSpec = check.spec
        allowed, stop = context.budget.allow(spec.requests, 0.0)
        if not allowed or allowed < spec.requests:
            reason = stop.reason if stop else f"only {allowed} of {spec.requests} requests allowed"
            return CheckResult(
                check.name, "overflow", False, "inconclusive",
                f"{check.name} inconclusive: budget ({reason})", 0, spec.points,
            )  # fmt: skip
        request = spec.request.probe()
        per_client = [spec.requests // spec.concurrency] * spec.concurrency
        for i in range(spec.requests % spec.concurrency):
            per_client[i] += 1
        with context.session() as first:  # one first, on its own: the run's trace starts here
            outcomes = first.send(request, 1)
        per_client[0] -= 1

        def client(count: int) -> list[Outcome]:
            if count <= 0:
                return []
            with context.session() as session:  # one at a time: a batch is concurrent
                return [o for _ in range(count) for o in session.send(request, 1)]

        with ThreadPoolExecutor(spec.concurrency) as pool:
            for batch in pool.map(client, per_client):
                outcomes.extend(batch)
        context.budget.spent(len(outcomes))
        plan = client_plan(request.origin, context.resources, context.plan)
        return judge(check, spec, outcomes, _cluster(plan, outcomes))


def judge(
    check: Check, spec: OverflowSpec, outcomes: list[Outcome], cluster: ClusterPlan | None
) -> CheckResult:
    """The verdict on what came back (pure: tests feed it made-up outcomes)."""
    overflowed = [o for o in outcomes if OVERFLOW_FLAG in o.response_flags.split(",")]
    retried = [o for o in overflowed if o.response_flags != OVERFLOW_FLAG or o.status != 503]
    observed = Counter(f"{o.status} {o.response_flags}" for o in outcomes)
    limit = capacity(cluster) if cluster is not None else None
    expect = spec.expect
    if expect == "configured":
        if limit is None:
            expect = "no-overflow"
        else:
            expect = "overflow" if spec.concurrency > limit else "no-overflow"
    pool = (
        f"{cluster.name} admits {limit} at once"
        if cluster is not None and limit is not None and cluster.pool.limited
        else "the pool is Istio's default, unlimited (no connectionPool applies)"
    )
    head = f"{len(overflowed)} of {len(outcomes)} requests at concurrency {spec.concurrency}"

    def result(passed: bool, message: str, outcome: str | None = None) -> CheckResult:
        return CheckResult(
            check.name, "overflow", passed, outcome or ("pass" if passed else "fail"), message,
            len(outcomes), spec.points, {}, dict(observed),
            {"expect": expect, "capacity": limit, "overflowed": len(overflowed)},
        )  # fmt: skip

    if expect == "overflow":
        if not overflowed and spec.expect == "configured":
            return result(
                False,
                f"{check.name} inconclusive: {head} overflowed; {pool}, so overflow was "
                "possible, not certain (requests must overlap inside Envoy): raise "
                "concurrency, or state `expect: overflow`",
                "inconclusive",
            )
        if not overflowed:
            return result(False, f"{check.name} failed: {head} overflowed (503 UO); {pool}")
        if retried:
            flags = sorted({o.response_flags for o in retried})
            return result(
                False,
                f"{check.name} failed: {len(retried)} overflows were not a bare 503 UO {flags}",
            )
        return result(True, f"{check.name} passed: {head} got 503 UO, never retried; {pool}")
    if overflowed:
        return result(False, f"{check.name} failed: {head} overflowed (503 UO); {pool}")
    return result(True, f"{check.name} passed: none of {len(outcomes)} requests at "
                  f"concurrency {spec.concurrency} overflowed; {pool}")  # fmt: skip
