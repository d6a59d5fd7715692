"""`kind: reachability`: is a request served at all, or refused by the mesh?

Why a kind of its own: mutual TLS is about *who may connect*, not about shares. A meshed
client's sidecar speaks mTLS and is served; a client without a sidecar speaks plaintext
straight to the pod (kube-proxy's path) and is refused under a STRICT PeerAuthentication,
served under PERMISSIVE. Refused looks like this to the client: the connection is reset or
closed with no HTTP answer (the inbound side fails the TLS handshake: verified on Envoy,
`ssl.connection_error` on the inbound listener); from a sidecar whose mTLS connection fails,
a 503 with Envoy's flag UC (connection dropped), UF or URX.

The behaviour is deterministic, so there is no statistics: every one of `requests` (10 by
default) must be what `expect` says; one served where refusal was expected (or the reverse)
fails the check. A pod-level policy on some of a Service's pods shows as a mix, named in the
message with each pod's mode and the policy that set it.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, PositiveInt

from meshlab.backends.base import Outcome
from meshlab.checks.base import Check, CheckContext, CheckKind, CheckResult, register
from meshlab.checks.hops import check_context, service_host
from meshlab.checks.request import RequestedSpec
from meshlab.checks.sampling import Sampler
from meshlab.checks.stats import Design
from meshlab.mesh.peer_authentication import explain, misplaced, peer_policies
from meshlab.mesh.plan import MeshPlan

SERVED, REFUSED, OTHER = "served", "refused", "other"
# Envoy's flags for an upstream connection that failed or was dropped before any answer
# (the callee's inbound side refused the TLS, or the plaintext): verified on Envoy, a
# sidecar sending plaintext to a STRICT pod answers 503 UC
_CONNECT_FLAGS = {"UF", "URX", "UC"}
MAX_REQUESTS = 1000
# How a client library words a connection the server dropped or refused (http.client on the
# embedded backend and in the kind probe): not a DNS failure or a timeout
_DROPPED = ("reset", "closed", "refused", "remotedisconnected", "brokenpipe", "connection failed")


class ReachabilitySpec(RequestedSpec):
    kind: Literal["reachability"]
    expect: Literal["served", "refused"]
    requests: PositiveInt = Field(default=10, le=MAX_REQUESTS)


def verdict_of(outcome: Outcome) -> str:
    """served: a pod answered (whatever its status); refused: no HTTP answer at all
    (reset, closed) or a sidecar's 503 for a failed upstream connection; other: anything
    else (no route, no healthy pod, a timeout), which is neither."""
    if outcome.status is None:
        error = (outcome.error or "").lower()
        return REFUSED if any(word in error for word in _DROPPED) else OTHER
    flags = set((outcome.response_flags or "-").split(","))
    if outcome.status == 503 and flags & _CONNECT_FLAGS:
        return REFUSED
    if flags == {"-"}:  # the answer is the app's, whatever its status
        return SERVED
    return OTHER


@register
class ReachabilityKind(CheckKind):
    kind = "reachability"
    spec_model = ReachabilitySpec

    def run(self, check: Check, context: CheckContext) -> CheckResult:
        spec: ReachabilitySpec = check.spec
        sampler = Sampler(context, spec.request.probe(), "version", bucket_of=verdict_of)
        try:
            outcomes = sampler.send(spec.requests)
        finally:
            sampler.close()
        counts = Counter(verdict_of(o) for o in outcomes)
        sent = len(outcomes)
        passed = sent == spec.requests and counts[spec.expect] == sent
        if sampler.stopped is not None and sent < spec.requests:
            outcome = "inconclusive"
            message = (
                f"{check.name} inconclusive: budget ({sampler.stopped.reason}): "
                f"{sent} of {spec.requests} sent, not judged, so not passed"
            )
        else:
            outcome = "pass" if passed else "fail"
            message = _message(check, spec, counts, sent, outcomes, context)
        return CheckResult(
            name=check.name,
            kind=check.kind,
            passed=passed and outcome == "pass",
            outcome=outcome,
            message=message,
            requests=sent,
            points=spec.points,
            expected={spec.expect: 1.0},
            observed=dict(counts),
            details={"errors": dict(sampler.errors), "pods": dict(sampler.pods)},
        )

    def planned_requests(
        self, check: Check, plan: MeshPlan, design: Design, override: int | None, limit: int
    ) -> int | None:
        spec: ReachabilitySpec = check.spec
        return int(spec.requests)


def _message(
    check: Check,
    spec: ReachabilitySpec,
    counts: Counter[str],
    sent: int,
    outcomes: list[Outcome],
    context: CheckContext,
) -> str:
    """`NAME passed: refused 10 of 10 ...` or `NAME FAILED: expected refused, got served
    10 of 10`, then what decides it: each target pod's mode and the policy that set it."""
    name = check.name + check_context(spec.request.origin, None, None)
    seen = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    if counts[spec.expect] == sent:
        lines = [f"{name} passed: {spec.expect} as expected ({seen} of {sent})"]
    else:
        lines = [f"{name} FAILED: expected {spec.expect}, got {seen} of {sent}"]
    errors = Counter(o.error for o in outcomes if o.error)
    if errors:
        lines.append(f"  the client saw: {errors.most_common(1)[0][0]}")
    flags = Counter(
        f"HTTP {o.status} ({o.response_flags})"
        for o in outcomes
        if verdict_of(o) != SERVED and o.status
    )
    if flags:
        lines.append(f"  the mesh answered: {flags.most_common(1)[0][0]}")
    lines += [f"  {cause}" for cause in _causes(spec, context)]
    return "\n".join(lines)


def _causes(spec: ReachabilitySpec, context: CheckContext) -> list[str]:
    """What decides it: each target pod's mode on the port and the policy behind it, and any
    policy written where it applies to nothing."""
    parts = urlsplit(spec.request.url)
    namespace = context.plan.client_namespace
    host = service_host(parts.hostname or "", namespace)
    port = parts.port or 80
    policies = peer_policies(context.resources)
    lines = []
    for service in context.plan.registry.services:
        if service.fqdn != host:
            continue
        for endpoint in service.endpoints.get(port, []):
            why = explain(policies, endpoint.pod, endpoint.port)
            lines.append(f"pod {endpoint.pod.name} accepts on port {endpoint.port}: {why}")
    namespaces = {p.namespace for p in context.plan.registry.pods}
    return lines + misplaced(policies, namespaces)
