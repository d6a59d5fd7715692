"""What a pod answers, and when, from the calls its image makes and the routes those calls
take: the part of `expect: configured` that lies behind the first hop.

A pod's answer depends on its calls (mesh/image_calls.py): each meets its caller's sidecar
route (the caller's own plan: namespace, labels), which may hold it back by a fault delay,
answer it at once with an abort (route.go TranslateFault: both drawn per request, the delay
first), cut it at the route's timeout (504), or find no route (404), no cluster or no pod
(503); the callee answers the same way, call after call. A broken image answers its status
at once (mesh/broken_images.py). The first hop's timeout starts after its own fault delay
(route.go setTimeout: the router's timer), so it races only what lies behind it.

Behind the first hop too, a route's retries move a retried failure onto the answers that
do not fail (as at the first hop: retry_forecast.py), and outlier detection takes a broken
pod out of its cluster for good once its ejection outlasts a check (ejection_forecast.py;
the forecast is recorded, so the check meets its errors in its warm-up). Left out, and said
so in docs/reference/lab-format.md: calls from a pod without a sidecar (kube-proxy: followed
no further), and the stand-ins' own few milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from meshlab.errors import Location
from meshlab.mesh.broken_images import broken_status
from meshlab.mesh.ejection_forecast import EjectionForecast, forecast_ejection
from meshlab.mesh.image_calls import Call, answer_status, calls_of
from meshlab.mesh.matching import mismatch, virtual_host_for
from meshlab.mesh.model import ClusterPlan, DirectResponse, Forward, Redirect, RoutePlan
from meshlab.mesh.passthrough import passed_through
from meshlab.mesh.plan import MeshPlan
from meshlab.mesh.registry import MeshService, PodInstance
from meshlab.mesh.request import ProbeRequest
from meshlab.mesh.retry_forecast import retries_status, still_failing
from meshlab.records import dataclass

PlanOf = Callable[[PodInstance], MeshPlan | None]  # a pod's sidecar plan (None: no sidecar)
MAX_DEPTH = 8  # the fleetman chain is 3 calls deep; a loop of Services stops here


@dataclass(frozen=True)
class Answer:
    """One way a request can end: after `seconds`, with `status`; `cause` is the rule that
    made it fail behind the first hop (what a failure message points at)."""

    seconds: float
    status: int
    cause: str | None = None
    location: Location | None = None


Answers = dict[Answer, float]
SERVED: Answers = {Answer(0.0, 200): 1.0}


def pod_answers(
    pod: PodInstance,
    method: str,
    path: str,
    headers: Mapping[str, str],
    plan_of: PlanOf,
    depth: int = 0,
    ejections: list[EjectionForecast] | None = None,
) -> Answers:
    """How `pod` answers `method path`: its calls one after the other, then its image's
    status for what they answered."""
    broken = broken_status(pod.image)
    if broken is not None:
        return {Answer(0.0, broken): 1.0}
    calls = calls_of(pod.image, method, path, headers) if depth < MAX_DEPTH else ()
    if not calls:
        return dict(SERVED)
    plan = plan_of(pod)
    combined: dict[tuple[float, tuple[int, ...], str | None, Location | None], float] = {
        (0.0, (), None, None): 1.0
    }
    for call in calls:
        step = call_answers(plan, call, plan_of, depth + 1, ejections)
        nxt: dict[tuple[float, tuple[int, ...], str | None, Location | None], float] = {}
        for (t, statuses, cause, where), p in combined.items():
            for answer, q in step.items():
                key = (
                    round(t + answer.seconds, 6),
                    (*statuses, answer.status),
                    cause or answer.cause,
                    where or answer.location,
                )
                nxt[key] = nxt.get(key, 0.0) + p * q
        combined = nxt
    out: Answers = {}
    for (t, statuses, cause, where), p in combined.items():
        status = answer_status(pod.image, statuses)
        failed = status >= 400
        answer = Answer(t, status, cause if failed else None, where if failed else None)
        out[answer] = out.get(answer, 0.0) + p
    return out


def call_answers(
    plan: MeshPlan | None,
    call: Call,
    plan_of: PlanOf,
    depth: int,
    ejections: list[EjectionForecast] | None = None,
) -> Answers:
    """How one call ends, through the caller's sidecar `plan` (None: no sidecar)."""
    if plan is None:
        return dict(SERVED)  # kube-proxy to some pod: not followed further
    through = passed_through(plan, call.host, call.port, plan.client_namespace)
    if through is not None:  # ALLOW_ANY: on to the ClusterIP, a pod at random, no routing
        return _passed_through(through, call, plan_of, depth, ejections)
    request = ProbeRequest(call.url, call.method, dict(call.headers))
    vhost = virtual_host_for(plan, call.host, call.port)
    if vhost is None:
        return {Answer(0.0, 503, f"no Service {call.host} in the caller's sidecar"): 1.0}
    route = next((r for r in vhost.routes if mismatch(r.match, request) is None), None)
    if route is None:
        return {Answer(0.0, 404, f"no route for {call.path} on {call.host}"): 1.0}
    where = route.location
    if isinstance(route.action, Redirect | DirectResponse):
        action = route.action
        code = action.code if isinstance(action, Redirect) else action.status
        return {Answer(0.0, code, "a redirect or a direct response", where): 1.0}
    fault = route.fault
    aborted = fault.abort_percent / 100.0 if fault and fault.abort_status else 0.0
    upstream = _retried(_upstream(plan, route, call, plan_of, depth, ejections), route)
    answers = {a: p * (1.0 - aborted) for a, p in upstream.items()}
    if aborted and fault and fault.abort_status:
        abort = Answer(0.0, fault.abort_status, f"fault.abort on {call.host}", where)
        answers[abort] = answers.get(abort, 0.0) + aborted
    if fault and fault.delay_s and fault.delay_percent > 0:
        delayed = min(fault.delay_percent, 100.0) / 100.0
        answers = _delayed(answers, fault.delay_s, delayed)
    if route.timeout_s > 0:
        # the router's timer starts after the fault delay: only the upstream's time races it
        answers = _cut(answers, route.timeout_s, fault.delay_s if fault else None, call, where)
    return answers


def _passed_through(
    service: MeshService,
    call: Call,
    plan_of: PlanOf,
    depth: int,
    ejections: list[EjectionForecast] | None,
) -> Answers:
    """kube-proxy's pick among the Service's pods (mesh/passthrough.py)."""
    pods = [e.pod for e in service.endpoints.get(call.port, [])]
    if not pods:
        return {Answer(0.0, 503, f"{call.host}: no pod to pick"): 1.0}
    mixed: Answers = {}
    for pod in pods:
        got = pod_answers(pod, call.method, call.path, call.headers, plan_of, depth, ejections)
        for answer, p in got.items():
            mixed[answer] = mixed.get(answer, 0.0) + p / len(pods)
    return mixed


def _upstream(
    plan: MeshPlan,
    route: RoutePlan,
    call: Call,
    plan_of: PlanOf,
    depth: int,
    ejections: list[EjectionForecast] | None,
) -> Answers:
    """The callee's answers over the route's weighted destinations and their pods (less the
    broken pods outlier detection ejects for longer than a check)."""
    assert isinstance(route.action, Forward)
    targets = route.action.targets
    weights = sum(t.weight for t in targets) if route.action.weighted else 1
    mixed: Answers = {}
    for target in targets:
        share = target.weight / weights if route.action.weighted else 1.0
        cluster = plan.clusters.get(target.cluster)
        pods = _serving(cluster, ejections) if cluster else []
        if not pods:
            what = "no cluster" if cluster is None else "no pod to pick"
            failed = Answer(0.0, 503, f"{target.host}: {what}", target.location)
            mixed[failed] = mixed.get(failed, 0.0) + share
            continue
        for pod in pods:
            answers = pod_answers(
                pod, call.method, call.path, call.headers, plan_of, depth, ejections
            )
            for answer, p in answers.items():
                mixed[answer] = mixed.get(answer, 0.0) + p * share / len(pods)
    return mixed


def _serving(cluster: ClusterPlan, ejections: list[EjectionForecast] | None) -> list[PodInstance]:
    """The cluster's pods once outlier detection has ejected the broken ones it ejects."""
    endpoints = cluster.endpoints
    broken = {e.pod.name: s for e in endpoints if (s := broken_status(e.pod.image)) is not None}
    forecast = forecast_ejection(cluster, endpoints, broken)
    if forecast is None or not forecast.outlasts_a_check:
        return [e.pod for e in endpoints]
    if ejections is not None and forecast not in ejections:
        ejections.append(forecast)
    return [e.pod for e in endpoints if e.pod.name not in forecast.ejected]


def _retried(answers: Answers, route: RoutePlan) -> Answers:
    """A retried failure moves onto the answers that do not fail, as often as the retry
    policy gets there (still_failing: previous_hosts, attempts); an abort is never retried
    (it is answered before the router), so this sees the upstream's answers only."""
    retry = route.retry
    if retry is None or retry.attempts <= 0:
        return answers
    failing = {a: p for a, p in answers.items() if retries_status(retry, a.status)}
    mass = sum(failing.values())
    if mass <= 0 or mass >= 1.0 - 1e-12:
        return answers
    kept = {a: p for a, p in answers.items() if a not in failing}
    out = dict(kept)
    for answer, p in failing.items():
        stays = still_failing(retry, answer.status, mass, bool(route.hash_policies))
        out[answer] = out.get(answer, 0.0) + p * stays
        for other, q in kept.items():
            out[other] += p * (1.0 - stays) * q / (1.0 - mass)
    return out


def _delayed(answers: Answers, seconds: float, share: float) -> Answers:
    out: Answers = {}
    for a, p in answers.items():
        late = Answer(round(a.seconds + seconds, 6), a.status, a.cause, a.location)
        out[a] = out.get(a, 0.0) + p * (1.0 - share)
        out[late] = out.get(late, 0.0) + p * share
    return out


def _cut(
    answers: Answers, timeout: float, delay: float | None, call: Call, where: Location | None
) -> Answers:
    """Answers whose upstream part reaches the timeout become the router's 504 (UT)."""
    out: Answers = {}
    for a, p in answers.items():
        # the delay (when this answer had it) is not the router's: subtract it back out
        upstream = a.seconds - (delay or 0.0) if delay and a.seconds >= delay else a.seconds
        ended = a
        if upstream >= timeout - 1e-9:
            cut_at = round(a.seconds - upstream + timeout, 6)
            ended = Answer(cut_at, 504, f"timeout on {call.host}", where)
        out[ended] = out.get(ended, 0.0) + p
    return out


def late_share(answers: Answers, timeout_s: float) -> float:
    """The chance an answer comes no sooner than `timeout_s` (Envoy's timer wins the race
    when they are equal: the answer still has its own way to go)."""
    return sum(p for a, p in answers.items() if a.seconds >= timeout_s - 1e-9)
