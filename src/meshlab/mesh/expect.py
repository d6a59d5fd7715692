"""What the configuration asks the mesh to do with one request, read off the plan.

`expect: configured` means: the weights of the route that matches the request, each
destination's share spread over the pods its subset selects (all of Istio's load-balancing
policies are even across endpoints in expectation). Where the configuration asks for
something the mesh cannot deliver (a subset no DestinationRule defines, a subset that selects
no pods, a host that is no Service, a request no route matches), the expectation still names
what was asked and records the cause, so the check fails and says why.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import field
from urllib.parse import parse_qsl, urlsplit

from meshlab.errors import Location
from meshlab.mesh.broken_images import broken_status
from meshlab.mesh.chain_answers import Answers, PlanOf, pod_answers
from meshlab.mesh.ejection_forecast import EjectionForecast, forecast_ejection
from meshlab.mesh.gateway_plan import gateway_refusal
from meshlab.mesh.matching import mismatch, virtual_host_for
from meshlab.mesh.model import ClusterPlan, HashPolicyPlan
from meshlab.mesh.passthrough import passed_through
from meshlab.mesh.plan import (
    PASSTHROUGH_CLUSTER,
    DirectResponse,
    Forward,
    MeshPlan,
    Redirect,
    RoutePlan,
    WeightedTarget,
)
from meshlab.mesh.registry import Endpoint, MeshService, PodInstance
from meshlab.mesh.request import ProbeRequest
from meshlab.mesh.retry_forecast import still_failing
from meshlab.records import dataclass

# A share the retries leave below this is predicted as none: the split test tells a share
# from half of it, which for 1% already takes thousands of requests, and the band's upper
# margin (delta, 10 points) absorbs what is left (docs/statistics.md, "The band").
NEGLIGIBLE = 0.01


@dataclass(frozen=True)
class Source:
    """Where a configured share comes from: `VirtualService default/x, istio-rules.yaml:14`."""

    what: str
    location: Location | None
    weight: int | None = None

    def __str__(self) -> str:
        return f"{self.what}, {self.location.short()}" if self.location else self.what


@dataclass(frozen=True)
class Cause:
    """A known reason the mesh will not deliver part of the configured split."""

    bucket: str
    effect: str  # what the mesh will do, e.g. "503 NC (no cluster)"
    reason: str
    location: Location | None = None
    flags: str | None = None


@dataclass
class ExpectedSplit:
    """What the configuration asks for one request: each bucket's share of it, with the lines that
    set it, and the causes of what the mesh cannot deliver, for the checks to judge traffic against
    and to explain a failure."""

    shares: dict[str, float] = field(default_factory=dict)
    sources: dict[str, list[Source]] = field(default_factory=lambda: defaultdict(list))
    causes: list[Cause] = field(default_factory=list)
    route: str = ""
    # The route's consistent-hash keys (route.go: one per hashing destination, in order),
    # where they are set, and the pods its destinations can reach: the shares above hold over
    # many keys, while one key's requests all land on one pod (see `hashed_on`).
    hashing: tuple[HashPolicyPlan, ...] = ()
    hash_source: Source | None = None
    pods: set[str] = field(default_factory=set)
    # The route's fault delay and timeout (the latency kind's `configured`): the share of
    # requests the caller's sidecar holds back by `delay_s` before routing them.
    delay_s: float | None = None
    delay_share: float = 0.0
    delay_source: Source | None = None
    timeout_s: float = 0.0
    # Broken pods the route's clusters eject (outlierDetection): the shares above are the
    # steady state once they are out; the errors before it are sent first and not judged.
    ejections: list[EjectionForecast] = field(default_factory=list)
    # When the answers of the forwarded share come back, behind the route's own fault delay
    # ({seconds: share}; the rest, aborts and direct answers, at once): the latency kind's
    # `configured` adds the route's delay to it (filled when `plan_of` is given).
    behind: dict[float, float] = field(default_factory=dict)

    def hashed_on(self, request: ProbeRequest) -> HashPolicyPlan | None:
        """The hash key this request (or its session) carries, if the route hashes on one:
        then every request of a session lands on one pod, whatever the shares say."""
        return next((p for p in self.hashing if carries_key(p, request)), None)

    def add(self, bucket: str, share: float, source: Source | None = None) -> None:
        self.shares[bucket] = self.shares.get(bucket, 0.0) + share
        if source is not None and source not in self.sources[bucket]:
            self.sources[bucket].append(source)


def carries_key(policy: HashPolicyPlan, request: ProbeRequest) -> bool:
    """Whether Envoy finds this hash key in the request (envoy/router/config hash_policy):
    a header or query parameter it sends, a cookie it sends or that Envoy sets on the first
    answer (a ttl is given) and the session sends back, its source address (always)."""
    if policy.kind == "header":
        return policy.name.lower() in {h.lower() for h in request.headers}
    if policy.kind == "query_parameter":
        query = urlsplit(request.url).query
        return any(name == policy.name for name, _ in parse_qsl(query, keep_blank_values=True))
    if policy.kind == "cookie":
        sent = next((v for h, v in request.headers.items() if h.lower() == "cookie"), "")
        names = {part.split("=", 1)[0].strip() for part in sent.split(";")}
        return policy.ttl_s is not None or policy.name in names
    return True  # source_ip


def configured_split(
    plan: MeshPlan, request: ProbeRequest, by: str, plan_of: PlanOf | None = None
) -> ExpectedSplit:
    """What the configuration gives `request` (see the module's docstring); with `plan_of`
    (each pod's sidecar plan), a route timeout cuts the answers that come later than it."""
    expected = ExpectedSplit()
    refusal = gateway_refusal(plan, request.host, request.port) if plan.gateway else None
    if refusal is not None:
        # Through a gateway: a Host or port its servers or VirtualServices don't serve.
        expected.add(request.host, 1.0)
        flags = "NR" if "404" in refusal else None
        effect = "404 NR (no route)" if flags else "no response"
        expected.causes.append(Cause(request.host, effect, refusal, None, flags))
        return expected
    through = passed_through(plan, request.host, request.port, plan.client_namespace)
    if through is not None:
        _expect_passed_through(through, request.port, by, expected)
        return expected
    listener = plan.listener_for(request.port)
    vhost = virtual_host_for(plan, request.host, request.port) if listener else None
    if vhost is None or (vhost.service is None and vhost.virtual_service is None):
        # Asked for: the host the request names. The mesh cannot deliver it (no response).
        expected.add(request.host, 1.0)
        expected.causes.append(
            Cause(
                request.host,
                "no response",
                f"no Service named {request.host!r} serves port {request.port}",
            )
        )
        return expected
    route = next((r for r in vhost.routes if mismatch(r.match, request) is None), None)
    # A VirtualService host that is no Service (its own vhost) is asked for by its name.
    asked = vhost.service.name if vhost.service else request.host
    if vhost.virtual_service is not None:
        owner = vhost.virtual_service.ref
    else:
        owner = f"Service {vhost.service.namespace}/{asked}" if vhost.service else asked
    if route is None:
        # Asked for: the service the request names. No route takes it there (404 NR).
        expected.route = f"{owner}: no route matches"
        expected.add(asked, 1.0)
        expected.causes.append(
            Cause(
                asked,
                "404 NR (no route)",
                f"no route of {owner} matches {request.method} {request.path}",
                vhost.virtual_service.location if vhost.virtual_service else None,
                "NR",
            )
        )
        return expected
    expected.route = (
        f"{owner}, route"
        + (f" {route.name}" if route.name else "")
        + (f" ({route.location.short()})" if route.location else "")
    )
    behind = _behind(request, plan_of, expected) if plan_of is not None else None
    _expect_route(plan, route, owner, by, expected, behind)
    if isinstance(route.action, Forward) and route.hash_policies:
        expected.hashing = route.hash_policies
        rules = [
            c.destination_rule
            for t in route.action.targets
            if (c := plan.clusters.get(t.cluster)) is not None and c.destination_rule is not None
        ]
        if rules:
            expected.hash_source = Source(rules[0].ref, rules[0].location)
    return expected


def _expect_passed_through(
    service: MeshService, port: int, by: str, expected: ExpectedSplit
) -> None:
    """ALLOW_ANY passes the name through to the Service's ClusterIP (mesh/passthrough.py):
    kube-proxy picks any of its pods, none of the caller's routing applies."""
    expected.route = f"PassthroughCluster (ALLOW_ANY) to Service {service.namespace}/{service.name}"
    source = Source(
        f"PassthroughCluster (ALLOW_ANY): the caller's sidecar imports no route for "
        f"{service.name}, so kube-proxy picks one of its pods",
        None,
    )
    endpoints = service.endpoints.get(port, [])
    if not endpoints:
        expected.add(service.name, 1.0, source)
        expected.causes.append(
            Cause(service.name, "connection refused", f"Service {service.name} selects no pods")
        )
        return
    expected.pods.update(e.pod.name for e in endpoints)
    for endpoint in endpoints:
        status = broken_status(endpoint.pod.image)
        bucket = f"HTTP {status}" if status else endpoint.pod.labels.get(by, "unknown")
        expected.add(bucket, 1.0 / len(endpoints), source)


def _behind(
    request: ProbeRequest, plan_of: PlanOf, expected: ExpectedSplit
) -> Callable[[PodInstance], Answers]:
    """How a pod of the route answers, from what lies behind it (mesh/chain_answers.py);
    the ejections found there join `expected.ejections` (the check's warm-up meets them)."""

    def answers(pod: PodInstance) -> Answers:
        return pod_answers(
            pod, request.method, request.path, request.headers, plan_of, 0, expected.ejections
        )

    return answers


def _expect_route(
    plan: MeshPlan,
    route: RoutePlan,
    owner: str,
    by: str,
    expected: ExpectedSplit,
    behind: Callable[[PodInstance], Answers] | None = None,
) -> None:
    action = route.action
    scale = 1.0
    expected.timeout_s = route.timeout_s
    fault = route.fault
    if fault and fault.delay_s is not None and fault.delay_percent > 0:
        # route.go TranslateFault: Envoy's fault filter draws the delay and the abort
        # independently (envoy fault_filter.cc: the delay first, then the abort), so the
        # delayed share does not shrink with an abort; the route's timeout is the router's,
        # whose timer starts only once the delay is over (it never cuts a fault delay).
        expected.delay_s = fault.delay_s
        expected.delay_share = min(fault.delay_percent, 100.0) / 100.0
        expected.delay_source = Source(f"{owner} fault.delay", route.location)
    if route.fault and route.fault.abort_status is not None and route.fault.abort_percent > 0:
        aborted = route.fault.abort_percent / 100.0
        expected.add(
            f"HTTP {route.fault.abort_status}",
            aborted,
            Source(f"{owner} fault.abort", route.location),
        )
        scale = 1.0 - aborted
    if isinstance(action, Redirect):
        expected.add(f"HTTP {action.code}", scale, Source(f"{owner} redirect", route.location))
        return
    if isinstance(action, DirectResponse):
        expected.add(
            f"HTTP {action.status}", scale, Source(f"{owner} directResponse", route.location)
        )
        return
    total = sum(t.weight for t in action.targets) if action.weighted else 1
    for target in action.targets:
        share = scale * (target.weight / total if action.weighted else 1.0)
        _expect_target(plan, target, share, owner, by, expected, route, behind)


def _expect_target(
    plan: MeshPlan,
    target: WeightedTarget,
    share: float,
    owner: str,
    by: str,
    expected: ExpectedSplit,
    route: RoutePlan | None = None,
    behind: Callable[[PodInstance], Answers] | None = None,
) -> None:
    source = Source(owner, target.location, target.weight)
    cluster = plan.clusters.get(target.cluster)
    if target.cluster == PASSTHROUGH_CLUSTER:
        expected.add("HTTP 503", share, source)
    elif cluster is None:
        _expect_no_cluster(plan, target, share, source, expected)
    elif not cluster.endpoints:
        _expect_no_pods(cluster, share, source, by, expected)
    else:
        _expect_pods(cluster, share, source, owner, by, expected, route, behind)


def _expect_no_cluster(
    plan: MeshPlan, target: WeightedTarget, share: float, source: Source, expected: ExpectedSplit
) -> None:
    bucket = target.subset or target.host
    expected.add(bucket, share, source)
    service = plan.registry.service_by_fqdn(target.host)
    if service is None:
        reason = f"destination host {target.host} is not a Service in the mesh"
    elif target.subset:
        # in the DestinationRule's order, as the analysis lists them
        defined = list(
            dict.fromkeys(
                c.subset for c in plan.clusters.values() if c.service is service and c.subset
            )
        )
        known = (
            f" (defined: {', '.join(defined)})"
            if defined
            else " (no DestinationRule defines subsets for it)"
        )
        reason = (
            f'subset "{target.subset}" of host {service.name} is not defined by any '
            f"DestinationRule{known}"
        )
    else:
        reason = f"port {target.cluster.split('|')[1]} is not a port of Service {service.name}"
    # a missing subset is fixed at its `subset:` line (where the analysis points too)
    where = target.subset_location if target.subset else target.location
    expected.causes.append(Cause(bucket, "503 NC (no cluster)", reason, where, "NC"))


def _expect_no_pods(
    cluster: ClusterPlan, share: float, source: Source, by: str, expected: ExpectedSplit
) -> None:
    bucket = cluster.subset_labels.get(by) or cluster.subset or cluster.service.name
    expected.add(bucket, share, source)
    labels = ", ".join(f"{k}={v}" for k, v in cluster.subset_labels.items())
    what = (
        f'subset "{cluster.subset}" (labels {labels})'
        if cluster.subset
        else f"Service {cluster.service.name}"
    )
    location = (
        cluster.destination_rule.location if cluster.destination_rule and cluster.subset else None
    )
    expected.causes.append(
        Cause(bucket, "503 UH (no healthy upstream)", f"{what} selects no pods", location, "UH")
    )


def _expect_pods(
    cluster: ClusterPlan,
    share: float,
    source: Source,
    owner: str,
    by: str,
    expected: ExpectedSplit,
    route: RoutePlan | None,
    behind: Callable[[PodInstance], Answers] | None = None,
) -> None:
    """The share spread over the cluster's pods: a broken pod's status unless retries move
    it on, or none at all once outlier detection has ejected it; a good pod's answer cut
    (504 UT) when it comes later than the route's timeout."""
    endpoints = cluster.endpoints
    expected.pods.update(e.pod.name for e in endpoints)
    broken = {e.pod.name: s for e in endpoints if (s := broken_status(e.pod.image)) is not None}
    ejected = _ejected(cluster, endpoints, broken, expected)
    rule = cluster.destination_rule
    outlier = Source(f"{rule.ref} outlierDetection", rule.location) if rule else source
    if ejected:
        endpoints = [e for e in endpoints if e.pod.name not in ejected]
        broken = {name: status for name, status in broken.items() if name not in ejected}
        if not endpoints:
            # panic is off (minHealthPercent 0): no healthy host is left to pick
            expected.add("HTTP 503", share, outlier)
            expected.causes.append(
                Cause(
                    "HTTP 503",
                    "503 UH (no healthy upstream)",
                    f"outlierDetection ejects every pod of {cluster.name}",
                    outlier.location,
                    "UH",
                )
            )
            return
    per_endpoint = share / len(endpoints)
    good = [e for e in endpoints if e.pod.name not in broken]
    retry = route.retry if route is not None else None
    hashed = bool(route is not None and route.hash_policies)
    for endpoint in endpoints:
        status = broken.get(endpoint.pod.name)
        if status is None:
            bucket = endpoint.pod.labels.get(by, "unknown")
            if behind is None:
                expected.add(bucket, per_endpoint, source)
            else:
                _expect_answers(
                    behind(endpoint.pod), per_endpoint, bucket, source, owner, route, expected
                )
            if ejected:
                expected.add(bucket, 0.0, outlier)  # its share grew by the ejected pods'
            continue
        # a broken pod answers its status (Outcome.bucket: a 5xx is its own bucket), unless
        # the route's retry policy takes the request on to a good pod
        stays = still_failing(retry, status, len(broken) / len(endpoints), hashed) if good else 1
        if per_endpoint * stays < NEGLIGIBLE:
            stays = 0.0  # a tiny share can't be judged in any budget; the band absorbs it
        if stays > 0:
            expected.add(f"HTTP {status}", per_endpoint * stays, source)
        if stays < 1:
            # stays < 1 only under a route's retry policy
            policy = retry.retry_on if retry else ""
            retried = Source(f"{owner} retries ({policy})", route.location if route else None)
            for other in good:
                moved = per_endpoint * (1 - stays) / len(good)
                expected.add(other.pod.labels.get(by, "unknown"), moved, retried)


def _expect_answers(
    answers: Answers,
    share: float,
    bucket: str,
    source: Source,
    owner: str,
    route: RoutePlan | None,
    expected: ExpectedSplit,
) -> None:
    """A good pod's share split by how its answer ends: its own bucket (a status under
    500, as Outcome.bucket counts it), the status a failure behind it gives, or the route's
    504 (UT) when the answer comes no sooner than the route's timeout (its timer starts after
    the route's own fault delay: route.go setTimeout). A share under NEGLIGIBLE stays with
    the pod: the test cannot tell it, the band absorbs it."""
    timeout = route.timeout_s if route is not None else 0.0
    moved: dict[tuple[str, Source], float] = {}
    for answer, p in answers.items():
        ended = min(answer.seconds, timeout) if timeout > 0 else answer.seconds
        expected.behind[ended] = expected.behind.get(ended, 0.0) + p * share
        if timeout > 0 and answer.seconds >= timeout - 1e-9:
            where = route.location if route is not None else None
            key = ("HTTP 504", Source(f"{owner} timeout ({timeout:g} s)", where))
        elif answer.status >= 500:
            what = f"behind it: {answer.cause}" if answer.cause else "behind it"
            key = (f"HTTP {answer.status}", Source(what, answer.location))
        else:
            continue
        moved[key] = moved.get(key, 0.0) + p * share
    kept = share
    for (name, why), part in moved.items():
        if part < NEGLIGIBLE:
            continue
        expected.add(name, part, why)
        kept -= part
    if kept > 0:
        expected.add(bucket, kept, source)


def _ejected(
    cluster: ClusterPlan,
    endpoints: list[Endpoint],
    broken: dict[str, int],
    expected: ExpectedSplit,
) -> frozenset[str]:
    """The broken pods outlier detection takes out for the rest of a check (recorded in
    `expected.ejections`); an ejection that may end within a check is a cause, not a
    prediction: the pod comes back, fails again and is ejected again, over and over."""
    forecast = forecast_ejection(cluster, endpoints, broken)
    if forecast is None:
        return frozenset()
    if forecast.outlasts_a_check:
        expected.ejections.append(forecast)
        return frozenset(forecast.ejected)
    rule = cluster.destination_rule
    for status in forecast.statuses:
        expected.causes.append(
            Cause(
                f"HTTP {status}",
                "ejected, back, ejected again",
                f"outlierDetection ejects {', '.join(forecast.ejected)} after "
                f"{forecast.errors} errors but lets it back after {forecast.cycle_s:g} s, "
                "sooner than a check may last: `configured` predicts no ejection (state "
                "`expect`, or check it with `kind: ejection`)",
                rule.location if rule else None,
            )
        )
    return frozenset()
