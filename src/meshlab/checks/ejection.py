"""`kind: ejection`: a pod answering 5xx is ejected after a stated number of consecutive
errors, then gets no traffic while it is ejected (Istio's outlierDetection, lab
6-circuit-breaking).

Design. The check sends requests one after another from one client. Phase 1 (`requests`,
default 30) finds the failing pods: with two pods sharing traffic a broken one is picked
fewer than 2 times in 30 requests with probability 31/2^30 (3e-8), so a working rule is
seen. After each 5xx the check pauses `SETTLE_S`: Envoy counts the error on the worker
thread and ejects on its main thread, then tells the workers; a real client racing that
hand-over may reach the pod once more, which is Envoy's timing, not the rule's. Phase 2 keeps
sending until `window` has passed since the last ejection it saw. A pod passes when it
failed exactly `errors` times and got no request from its ejection to the window's end.

Timing: consecutive-5xx ejection is immediate (Envoy acts on the error, not on the
`interval` tick, which only un-ejects), and an ejection lasts `baseEjectionTime` (the course:
30 s). The check does not wait that out: it watches `window` (default 2 s, at most half the
configured ejection time) of it, so it gives its verdict in about `window` plus the requests.
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import Field, field_validator

from meshlab.backends.base import Outcome, Session
from meshlab.checks.base import (
    Check,
    CheckContext,
    CheckKind,
    CheckResult,
    ProgressUpdate,
    register,
)
from meshlab.checks.origins import client_plan
from meshlab.checks.request import RequestedSpec
from meshlab.checks.stats import Design
from meshlab.checks.warmup import SETTLE_S
from meshlab.load import istio
from meshlab.load.schema import Strict
from meshlab.mesh.ejection_forecast import ejectable_hosts
from meshlab.mesh.plan import ClusterPlan, MeshPlan
from meshlab.mesh.resilience import OutlierPlan
from meshlab.records import dataclass

PACE_S = 0.01  # pause between the window's requests
MAX_WINDOW_REQUESTS = 400


class EjectionExpect(Strict):
    """`expect: {errors: 2}`: the consecutive 5xx a pod is allowed before it is ejected."""

    errors: int = Field(ge=1, le=100)


class EjectionSpec(RequestedSpec):
    kind: Literal["ejection"]
    by: str = Field(default="version", min_length=1)  # the pod label that names pods in messages
    expect: Literal["configured"] | EjectionExpect = "configured"
    requests: int = Field(default=30, ge=4, le=1000)
    window: str = "2s"

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        seconds = istio.parse_duration(value)
        if not 0.1 <= seconds <= 20:
            raise ValueError(f"window {value!r} must be from 100ms to 20s")
        return value


@dataclass
class Sent:
    """One request the ejection check sent and what came back, with when, to place each 5xx and each
    later request on the timeline of an ejection."""

    at: float
    outcome: Outcome

    @property
    def pod_error(self) -> bool:
        """A 5xx a pod answered (not one the mesh made up: no pod, or a flag such as UO)."""
        o = self.outcome
        return o.pod is not None and o.status is not None and o.status >= 500


@dataclass
class PodVerdict:
    """One failing pod's record: its 5xx count, when the error that should eject it came back and
    how many requests still reached it afterwards (leaks: the rule did not eject it)."""

    pod: str
    name: str  # `pod (version=risky)`
    errors: int
    ejected_at: float | None  # when its expected-th error came back
    leaks: int  # requests it got from then to the window's end
    cluster: ClusterPlan | None


def _cluster(plan: MeshPlan, outcomes: list[Outcome]) -> ClusterPlan | None:
    """The client's cluster these requests went through (a proxy's prefix `x~` dropped)."""
    for outcome in outcomes:
        if outcome.upstream_cluster:
            return plan.clusters.get(outcome.upstream_cluster.split("~")[-1])
    return None


def expected_errors(spec: EjectionSpec, cluster: ClusterPlan | None) -> int | None:
    """The stated count, or the configured one (None: the cluster ejects on no 5xx count)."""
    if isinstance(spec.expect, EjectionExpect):
        return spec.expect.errors
    if cluster is None or cluster.outlier is None:
        return None
    if not ejectable_hosts(cluster.outlier, len(cluster.endpoints)):
        return None  # maxEjectionPercent leaves no host ejectable
    return cluster.outlier.ejects_after


def cause(cluster: ClusterPlan | None, errors: int | None) -> str:
    """Why the configuration does not eject after `errors` consecutive 5xx, in the words of
    the DestinationRule (cluster_traffic_policy.go applyOutlierDetection)."""
    if cluster is None:
        return ""
    if cluster.outlier is None:
        return _no_outlier(cluster)
    count = cluster.outlier.ejects_after
    if count is None:
        return "consecutive5xxErrors: 0 turns ejection on consecutive 5xx off"
    limited = _none_ejectable(cluster, cluster.outlier)
    if limited:
        return limited
    if errors is not None and count != errors:
        said = (
            "consecutive5xxErrors is unset: Envoy's default is 5"
            if cluster.outlier.consecutive_5xx is None
            else f"consecutive5xxErrors is {count}"
        )
        return f"the DestinationRule ejects after {count} consecutive 5xx ({said})"
    return ""


def _no_outlier(cluster: ClusterPlan) -> str:
    """Why a cluster has no outlier detection: no rule applies, or the rule sets none."""
    host = cluster.service.fqdn
    if cluster.destination_rule is None:
        return (
            f"no DestinationRule applies to {host}, so Istio writes no outlier detection: "
            f"the rule's `host` must name this Service ({cluster.service.name} or {host})"
        )
    where = f" (subset {cluster.subset})" if cluster.subset else ""
    return (
        f"{cluster.destination_rule.ref} sets no "
        f"trafficPolicy.outlierDetection for {cluster.name}{where}: without it Envoy "
        "never ejects a pod"
    )


def _none_ejectable(cluster: ClusterPlan, outlier: OutlierPlan) -> str:
    """Why maxEjectionPercent leaves no pod of the cluster ejectable ("" if some is)."""
    pods = len(cluster.endpoints)
    if not pods or ejectable_hosts(outlier, pods):
        return ""
    percent = outlier.max_ejection_percent
    said = f"maxEjectionPercent is {percent}" if percent else "maxEjectionPercent is unset"
    return (
        f"{said}: Envoy ejects a pod only if the ejected stay within that share of the "
        f"{pods} pods after it (1 of {pods} is {100 // pods}%), so it ejects none "
        "(Envoy's default is 10%)"
    )


def window_seconds(spec: EjectionSpec, cluster: ClusterPlan | None) -> float:
    """The watched part of the ejection: `window`, at most half the configured ejection (a
    pod coming back after it is right, not a leak)."""
    window = istio.parse_duration(spec.window)
    if cluster is not None and cluster.outlier is not None:
        window = min(window, cluster.outlier.ejection_seconds / 2)
    return window


class _Run:
    def __init__(self, context: CheckContext, spec: EjectionSpec) -> None:
        self.context, self.spec = context, spec
        self.sent: list[Sent] = []
        self.stopped: str | None = None
        self._pace: float | None = None

    def one(self, session: Session) -> bool:
        allowed, stop = self.context.budget.allow(1, self._pace)
        if not allowed:
            self.stopped = stop.reason if stop else "budget"
            return False
        start = time.monotonic()
        [outcome] = session.send(self.spec.request.probe(), 1)
        self._pace = time.monotonic() - start
        self.context.budget.spent(1)
        item = Sent(time.monotonic(), outcome)
        self.sent.append(item)
        if item.pod_error:
            time.sleep(SETTLE_S)
        return True


@register
class EjectionKind(CheckKind):
    kind = "ejection"
    spec_model = EjectionSpec

    def planned_requests(
        self, check: Check, plan: MeshPlan, design: Design, override: int | None, limit: int
    ) -> int | None:
        spec: EjectionSpec = check.spec
        return spec.requests + MAX_WINDOW_REQUESTS

    def run(self, check: Check, context: CheckContext) -> CheckResult:
        spec: EjectionSpec = check.spec
        plan = client_plan(spec.request.origin, context.resources, context.plan)
        run = _Run(context, spec)
        with context.session() as session:
            for _ in range(spec.requests):
                if not run.one(session):
                    break
                context.progress(ProgressUpdate(len(run.sent), spec.requests))
            cluster = _cluster(plan, [s.outcome for s in run.sent])
            errors, window = expected_errors(spec, cluster), window_seconds(spec, cluster)
            ejections = _ejection_times(run.sent, errors)
            if ejections and run.stopped is None:
                deadline = max(ejections.values()) + window
                while time.monotonic() < deadline and len(run.sent) < (
                    spec.requests + MAX_WINDOW_REQUESTS
                ):
                    if not run.one(session):
                        break
                    time.sleep(PACE_S)
        context.progress(ProgressUpdate(len(run.sent), len(run.sent), done=True))
        return judge(check, spec, run.sent, run.stopped, cluster, errors, window)


def _ejection_times(sent: list[Sent], errors: int | None) -> dict[str, float]:
    """Each failing pod's moment of ejection: when its `errors`-th 5xx came back (its last
    one if it never reached that many)."""
    counts: dict[str, int] = {}
    times: dict[str, float] = {}
    for item in sent:
        if item.pod_error and item.outcome.pod is not None:
            pod = item.outcome.pod
            counts[pod] = counts.get(pod, 0) + 1
            if errors is None or counts[pod] <= errors:
                times[pod] = item.at
    return times


def _verdicts(
    sent: list[Sent],
    spec: EjectionSpec,
    errors: int | None,
    window: float,
    cluster: ClusterPlan | None,
) -> list[PodVerdict]:
    out = []
    for pod, ejected in _ejection_times(sent, errors).items():
        mine = [s for s in sent if s.outcome.pod == pod]
        failed = sum(s.pod_error for s in mine)
        labels = mine[0].outcome.labels
        name = f"{pod} ({spec.by}={labels[spec.by]})" if spec.by in labels else pod
        reached = errors is not None and failed >= errors
        # any request before the configured ejection ends is a leak, not only the window's
        horizon = max(
            window, cluster.outlier.ejection_seconds if cluster and cluster.outlier else 0
        )
        leaks = sum(ejected < s.at <= ejected + horizon for s in mine) if reached else 0
        out.append(PodVerdict(pod, name, failed, ejected if reached else None, leaks, cluster))
    return out


def judge(
    check: Check,
    spec: EjectionSpec,
    sent: list[Sent],
    stopped: str | None,
    cluster: ClusterPlan | None,
    errors: int | None,
    window: float,
) -> CheckResult:
    """The verdict on what was sent (pure: simulations feed it made-up traffic)."""
    verdicts = _verdicts(sent, spec, errors, window, cluster)
    details = {
        "window_seconds": window,
        "pods": {
            v.pod: {"errors": v.errors, "leaks": v.leaks, "ejected": v.ejected_at is not None}
            for v in verdicts
        },
    }
    observed = {v.pod: v.errors for v in verdicts}
    expected = {"errors": float(errors)} if errors is not None else {}

    def result(passed: bool, outcome: str, message: str) -> CheckResult:
        return CheckResult(
            check.name, "ejection", passed, outcome, message, len(sent), spec.points,
            expected, observed, details,
        )  # fmt: skip

    if errors is None:
        why = cause(cluster, None) or "the configuration ejects on no count of 5xx"
        return result(False, "fail", f"{check.name} failed: {why}")
    if not verdicts:
        if stopped:
            return result(False, "inconclusive", f"{check.name} inconclusive: budget ({stopped})")
        return result(
            False,
            "fail",
            f"{check.name} failed: no pod answered 5xx in {len(sent)} requests, so there was "
            "nothing to eject (a broken pod, such as an image tagged 6-bad, must serve this "
            "request)",
        )
    lines = []
    for v in verdicts:
        if v.ejected_at is None:
            lines.append(f"{v.name} answered 5xx only {v.errors} times; {errors} eject it")
        elif v.leaks:
            tolerated = "never ejected" if v.errors > 2 * errors else f"ejected after {v.errors}"
            lines.append(
                f"{v.name} answered 5xx {v.errors} times ({tolerated}; expected ejection "
                f"after {errors}) and got {v.leaks} more requests after its {_ordinal(errors)} "
                "error"
            )
    if lines:
        why = cause(cluster, errors)
        text = "; ".join(lines) + (f": {why}" if why else "")
        if stopped and any(v.ejected_at is None for v in verdicts):
            return result(False, "inconclusive", f"{check.name} inconclusive: {text}")
        return result(False, "fail", f"{check.name} failed: {text}")
    ejection = cluster.outlier.ejection_seconds if cluster and cluster.outlier else None
    lasts = (
        f"; the ejection lasts {ejection:g} s, the check watched {window:g} s of it"
        if ejection
        else ""
    )
    pods = ", ".join(v.name for v in verdicts)
    return result(
        True,
        "pass",
        f"{check.name} passed: {pods} ejected after {errors} consecutive 5xx, then no "
        f"traffic to it for {window:g} s ({len(sent)} requests{lasts if ejection else ''})",
    )


def _ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th... 11th, 12th, 13th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
