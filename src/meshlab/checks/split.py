"""`kind: split`: the observed distribution over buckets (a pod label, or a failure class)
matches an expectation, decided by the sequential test in meshlab.checks.stats."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, PositiveInt, Tag, ValidationInfo, field_validator

from meshlab.analysis import Diagnostic
from meshlab.analysis.explain import explaining, request_hosts
from meshlab.backends.base import Outcome
from meshlab.checks.base import Check, CheckContext, CheckKind, CheckResult, register
from meshlab.checks.hashing import judge_one_key, one_key_requests
from meshlab.checks.hops import (
    LABEL_KEY,
    HopBy,
    check_context,
    hop_bucket,
    hop_failure_lines,
    label_reader,
    service_host,
    short_service,
    unmatched_headers,
)
from meshlab.checks.origins import client_plan, configured_for
from meshlab.checks.request import MAPPING, RequestedSpec, RequestSpec, word_or_mapping
from meshlab.checks.sampling import Sampler
from meshlab.checks.stats import (
    BucketVerdict,
    Design,
    SplitVerdict,
    anytime_interval,
    fixed_sample_size,
    sequential_cap,
    sequential_cap_estimate,
)
from meshlab.checks.warmup import warm_up, warmup_limit
from meshlab.mesh.expect import ExpectedSplit
from meshlab.mesh.plan import MeshPlan
from meshlab.mesh.request import ProbeRequest

MAX_WEIGHT = 1e9  # relative weights: any finite scale works, this one cannot overflow a sum


class SampledSpec(RequestedSpec):
    """What every kind that samples one request and judges shares of its answers has."""

    # a label of the answering pod, or of the pod that served a hop of the chain (HopBy)
    by: Annotated[
        Annotated[str, Field(min_length=1), Tag("str")] | Annotated[HopBy, Tag(MAPPING)],
        Discriminator(word_or_mapping),
    ] = "version"
    expect: Literal["configured"] | dict[str, Annotated[float, Field(le=MAX_WEIGHT)]] = Field(
        default="configured", validate_default=True
    )
    requests: Literal["auto"] | PositiveInt = "auto"

    @field_validator("by")
    @classmethod
    def _label_key(cls, value: Any) -> Any:
        if isinstance(value, str) and not LABEL_KEY.fullmatch(value):
            shown = value if len(value) <= 60 else value[:60] + "..."
            raise ValueError(f"by: {shown!r} is not a pod label key (such as version)")
        return value

    @property
    def label(self) -> str | None:
        """The pod label the buckets are named by (None when `by` names no label)."""
        if isinstance(self.by, HopBy):
            return self.by.label
        return self.by if isinstance(self.by, str) else None

    @property
    def hop(self) -> str | None:
        """The Service whose hop names the bucket (`by.service`); None: the answering pod."""
        return None if isinstance(self.by, str) else self.by.service

    @field_validator("expect")
    @classmethod
    def _weights(cls, value: Any, info: ValidationInfo) -> Any:
        if value == "configured":
            refusal = _configured_refusal(info.data.get("request"), info.data.get("by"))
            if refusal:
                raise ValueError(refusal)
        if isinstance(value, dict):
            if not value:
                raise ValueError("expect needs at least one bucket, e.g. {safe: 90, risky: 10}")
            if any(w < 0 for w in value.values()):
                raise ValueError("expect: weights must be zero or more")
            if sum(value.values()) <= 0:
                raise ValueError("expect: at least one weight must be positive")
        return value


def _configured_refusal(request: RequestSpec | None, by: Any) -> str | None:
    """`expect: configured` where meshlab cannot compute it faithfully: said at `expect:`
    (or the check, when it is the default) rather than judged against a guess."""
    if by is not None and not isinstance(by, str):  # a hop's form
        return (
            "configured is not available when the bucket is named at a hop of the chain "
            "(by: {service: ...}) yet (expect: configured is the default): state the "
            "expected shares, e.g. {risky: 100}"
        )
    return None


def bucketer(spec: SampledSpec, namespace: str) -> Callable[[Outcome], str] | None:
    """How a split check counts an outcome: at the hop of `by.service`, or (None) the
    answering pod's label, as Outcome.bucket does."""
    if not isinstance(spec.by, HopBy):
        return None
    service = service_host(spec.by.service, namespace)
    read, origin = label_reader(spec.by.label), spec.request.origin
    return lambda outcome: hop_bucket(outcome, service, namespace, read, origin)


class SplitSpec(SampledSpec):
    kind: Literal["split"]


@register
class SplitKind(CheckKind):
    kind = "split"
    spec_model = SplitSpec

    def run(self, check: Check, context: CheckContext) -> CheckResult:
        spec: SplitSpec = check.spec
        request = spec.request.probe()
        plan = client_plan(request.origin, context.resources, context.plan)
        configured = configured_for(
            request, None if spec.hop else spec.label, plan, context.resources
        )
        hashed = configured.hashed_on(request) if spec.expect == "configured" else None
        if hashed is not None and spec.label is not None:
            # one key: the shares hold over many keys, a session sticks to one pod
            fixed_n = context.requests_override or (
                spec.requests if spec.requests != "auto" else None
            )
            return judge_one_key(check, context, request, spec.label, configured, hashed, fixed_n)
        bucket_of = bucketer(spec, context.plan.client_namespace)
        return judge_shares(check, context, spec, configured, bucket_of)

    def planned_requests(
        self, check: Check, plan: MeshPlan, design: Design, override: int | None, limit: int
    ) -> int | None:
        spec: SplitSpec = check.spec
        request = spec.request.probe()
        configured = configured_for(request, None if spec.hop else spec.label, plan)
        if spec.expect == "configured" and configured.hashed_on(request) is not None:
            fixed = override or (spec.requests if spec.requests != "auto" else None)
            return fixed or one_key_requests(design)
        return planned_requests(spec, configured, design, override, limit)


def expected_shares(spec: SampledSpec, configured: ExpectedSplit) -> dict[str, float]:
    """The shares the check judges against: the configured ones, or `expect` normalised."""
    if spec.expect == "configured":
        return dict(configured.shares)
    total = sum(spec.expect.values())
    return {k: v / total for k, v in spec.expect.items()}


def planned_requests(
    spec: SampledSpec,
    configured: ExpectedSplit,
    design: Design,
    override: int | None,
    limit: int,
) -> int | None:
    """The most requests a share-judging check sends: its fixed N, else the sequential
    test's cap (an estimate when that is far over `limit`: sizing a 9999/1 split exactly
    would itself take a minute). None when nothing is expected (the check says why)."""
    fixed_n = override or (spec.requests if spec.requests != "auto" else None)
    warm = warmup_limit(configured)
    if fixed_n:
        return fixed_n + warm
    expected = expected_shares(spec, configured)
    if not expected or sum(expected.values()) <= 0:
        return None
    estimate = sequential_cap_estimate(expected, design)
    if estimate * 0.8 > limit:  # the estimate is within 10% of the cap: certainly over
        return estimate + warm
    return sequential_cap(expected, design) + warm


def judge_shares(
    check: Check,
    context: CheckContext,
    spec: SampledSpec,
    configured: ExpectedSplit,
    bucket_of: Callable[[Outcome], str] | None = None,
) -> CheckResult:
    """Sample the check's request and judge the shares of its buckets (the serving pod's
    label, or `bucket_of` an outcome) against `expect`: the split test every share-judging
    kind uses, with its messages."""
    request = spec.request.probe()
    expected = expected_shares(spec, configured)
    fixed_n = context.requests_override or (spec.requests if spec.requests != "auto" else None)
    run = Sampler(context, request, spec.label or "version", bucket_of=bucket_of)
    warmed = warm_up(run, configured)  # broken pods the configuration ejects: meet them first
    verdict = run.fixed(expected, fixed_n) if fixed_n else run.sequential(expected)
    diagnosed = _diagnosed(context, request, configured, spec.hop)
    result = _result(check, spec, verdict, run, expected, configured, diagnosed)
    if warmed is not None:
        result.details["warmup"] = warmed.to_json()
        head, *rest = result.message.split("\n")
        result.message = "\n".join([head, warmed.line(), *rest])
    return result


def _diagnosed(
    context: CheckContext, request: ProbeRequest, configured: ExpectedSplit, hop: str | None
) -> list[Diagnostic]:
    """The static analysis findings about this request's hosts (and the hop's Service, for
    a check counted at a deeper hop: a subset missing there breaks that call), less the
    known causes."""
    namespace = context.plan.client_namespace
    hosts = request_hosts(context.resources, request.host, namespace)
    if hop is not None:
        hosts |= request_hosts(context.resources, hop, namespace)
    causes = [(c.flags, c.bucket) for c in configured.causes]
    return explaining(context.analysis(), hosts, causes)


def _result(
    check: Check,
    spec: SampledSpec,
    verdict: SplitVerdict,
    run: Sampler,
    expected: dict[str, float],
    configured: ExpectedSplit,
    diagnosed: list[Diagnostic] | None = None,
) -> CheckResult:
    diagnosed = diagnosed or []
    message = _message(check.name, spec, verdict, run, configured, diagnosed)
    details: dict[str, Any] = {
        "request": {
            "url": spec.request.url,
            "method": spec.request.method,
            "origin": str(spec.request.origin),
        },
        "by": spec.label if spec.label is not None else str(spec.by),
        "by_service": spec.hop,
        "expect": "configured" if spec.expect == "configured" else "explicit",
        "route": configured.route,
        "method": verdict.method,
        "alpha": verdict.design.alpha,
        "beta": verdict.design.beta,
        "delta": verdict.design.delta,
        "buckets": [_bucket_json(b, verdict) for b in verdict.buckets],
        "sources": {k: [str(s) for s in v] for k, v in configured.sources.items()},
        "causes": [
            {
                "bucket": c.bucket,
                "effect": c.effect,
                "reason": c.reason,
                "location": str(c.location) if c.location else None,
            }
            for c in configured.causes
        ],
        "diagnostics": [d.to_json() for d in diagnosed],
        "response_flags": {k: dict(v) for k, v in run.flags.items()},
        "pods": [
            {"name": pod, "labels": run.pod_labels[pod], "count": count}
            for pod, count in sorted(run.pods.items())
        ],
        "errors": dict(run.errors.most_common(5)),
    }
    stopped = run.stopped if verdict.outcome == "inconclusive" else None
    if stopped is not None:
        details["budget"] = {"reason": stopped.reason, "flag": stopped.flag}
    return CheckResult(
        name=check.name,
        kind=check.kind,
        passed=verdict.passed and stopped is None,
        outcome=verdict.outcome,
        message=message,
        requests=verdict.n,
        points=spec.points,
        expected=expected,
        observed=dict(run.counts),
        details=details,
    )


def _bucket_json(b: BucketVerdict, verdict: SplitVerdict) -> dict[str, Any]:
    """The bucket's verdict with the numbers that decided it, so a report reader never
    recomputes them: the level of `interval` and, for the sequential test's shares in (0, 1),
    the 1 - beta anytime interval that passes once it lies inside the band."""
    decisive = verdict.method.startswith("sequential") and 0.0 < b.expected < 1.0 and b.n > 0
    design = verdict.design
    return {
        "bucket": b.bucket,
        "expected": b.expected,
        "count": b.count,
        "share": b.observed,
        "band": list(b.band),
        "interval": list(b.interval),
        "alpha": b.alpha,
        "pass_interval": (
            list(anytime_interval(b.expected, b.count, b.n, design.beta, design))
            if decisive
            else None
        ),
        "status": b.status,
    }


def percent(x: float) -> str:
    return f"{100 * x:.1f}%"


def confidence_label(alpha: float) -> str:
    """`99.9999%` for alpha = 1e-6: as many nines as the level has."""
    digits = max(0, math.ceil(-math.log10(alpha)) - 2)
    return f"{100 * (1 - alpha):.{digits}f}%"


def _focus(verdict: SplitVerdict) -> BucketVerdict:
    """The bucket a sentence should be about: the most-off one, else the smallest share."""
    off = [b for b in verdict.buckets if b.status == "off"]
    if off:  # ties (two complementary buckets) go to the smaller share: the canary
        return max(off, key=lambda b: (round(abs(b.observed - b.expected), 6), -b.expected))
    shares = [b for b in verdict.buckets if b.expected > 0]
    return min(shares, key=lambda b: b.expected) if shares else verdict.buckets[0]


def _message(
    name: str,
    spec: SampledSpec,
    verdict: SplitVerdict,
    run: Sampler,
    configured: ExpectedSplit,
    diagnosed: list[Diagnostic] | None = None,
) -> str:
    """Headline about the bucket that matters, then causes, what the mesh did, the test."""
    said = "configured" if spec.expect == "configured" else "expected"
    focus = _focus(verdict)
    headline = _headline(verdict, focus, said, configured)
    hop = short_service(spec.hop, run.context.plan.client_namespace) if spec.hop else None
    name += check_context(spec.request.origin, hop, spec.label)
    if verdict.outcome == "fail":
        lines = [f"{name} FAILED: {headline}", *_failure_lines(verdict, focus, said, configured)]
        counts = run.counts.most_common()
        lines += hop_failure_lines(counts, verdict.n, hop, spec.request.headers)
        if spec.hop:
            lines += unmatched_headers(
                run.context.resources,
                spec.hop,
                run.context.plan.client_namespace,
                spec.request.headers,
            )
        lines += [
            f"  likely cause: {d.message} ({d.code}"
            + (f", {d.location.short()}" if d.location else "")
            + ")"
            for d in diagnosed or []
        ]
    elif verdict.outcome == "inconclusive" and run.stopped is not None:
        lines = [
            f"{name} inconclusive: budget ({run.stopped.reason}): {headline}",
            "  not judged within the budget, so not passed: cut short, the test cannot "
            f"promise to catch a wrong split; {run.stopped.flag} raises the limit",
        ]
    elif verdict.outcome == "inconclusive":
        lines = [f"{name} passed (inconclusive after {verdict.n} requests, the cap): {headline}"]
    else:
        lines = [f"{name} passed: {headline}"]
    lines.append(f"  what the mesh did: {_what_the_mesh_did(run, verdict.n)}")
    if run.errors:
        lines.append(f"  client errors: {next(iter(run.errors))}")
    lines += _power_note(verdict)
    design = verdict.design
    lines.append(
        f"  {verdict.method}, N={verdict.n}, α={_sci(design.alpha)}, β={_sci(design.beta)}, "
        f"δ={100 * design.delta:.0f} points"
    )
    return "\n".join(lines)


def _where(bucket: str, said: str, configured: ExpectedSplit) -> str:
    """Which object and line set this share; with explicit weights, what the config says."""
    sources = "; ".join(str(s) for s in configured.sources.get(bucket, [])[:2])
    if said == "configured":
        return f" ({sources})" if sources else ""
    if not configured.shares:  # meshlab cannot say what the configuration gives here
        return ""
    share = configured.shares.get(bucket, 0.0)
    return f"; the configuration gives it {percent(share)}" + (f" ({sources})" if sources else "")


def _band(bucket: BucketVerdict) -> str:
    return f"{100 * bucket.band[0]:.0f}–{100 * bucket.band[1]:.0f}%"


def _headline(
    verdict: SplitVerdict, focus: BucketVerdict, said: str, configured: ExpectedSplit
) -> str:
    n = verdict.n
    if focus.expected == 0:
        share = percent(focus.observed)
        sent = "the configuration sends none there" if said == "configured" else "expected none"
        return f"{focus.bucket} for {focus.count} of {n} requests ({share}), {sent}"
    got = f"{focus.bucket} got {percent(focus.observed)}"
    wanted = f"{said} {percent(focus.expected)}{_where(focus.bucket, said, configured)}"
    partial = 0 < focus.expected < 1
    if verdict.outcome == "pass" and verdict.method.startswith("sequential") and partial:
        # The interval that decided the pass is the 1 - beta one: it lies inside the band.
        beta = verdict.design.beta
        lo, hi = anytime_interval(focus.expected, focus.count, n, beta, verdict.design)
        return (
            f"{got} ({focus.count}/{n}), {wanted}; {confidence_label(beta)} anytime CI "
            f"{100 * lo:.1f}–{100 * hi:.1f}% inside the band {_band(focus)}"
        )
    lo, hi = focus.interval
    level = confidence_label(verdict.design.alpha)
    band = f", band {_band(focus)}" if verdict.outcome != "fail" and partial else ""
    return f"{got} ({focus.count}/{n}, {level} CI {100 * lo:.1f}–{100 * hi:.1f}%), {wanted}{band}"


def _failure_lines(
    verdict: SplitVerdict, focus: BucketVerdict, said: str, configured: ExpectedSplit
) -> list[str]:
    """Configured buckets that went short, then every cause the analysis knows."""
    n = verdict.n
    lines = []
    for other in verdict.buckets:
        short = other.expected > 0 and other.status != "ok" and other.count < other.expected * n
        if other is not focus and short:
            origins = configured.sources.get(other.bucket, [])
            src = f", {origins[0]}" if origins else ""
            lines.append(
                f"  {other.bucket} got {other.count}/{n} ({percent(other.observed)}), "
                f"{said} {percent(other.expected)}{src}"
            )
    for cause in configured.causes:
        at = f" ({cause.location.short()})" if cause.location else ""
        lines.append(f"  likely cause: {cause.reason}{at}; the mesh answers {cause.effect}")
    return lines


def _what_the_mesh_did(run: Sampler, n: int) -> str:
    if not n:
        return "nothing"
    return ", ".join(
        f"{bucket} {count} ({percent(count / n)})" + _flags(run.flags.get(bucket))
        for bucket, count in run.counts.most_common()
    )


def _power_note(verdict: SplitVerdict) -> list[str]:
    """A fixed N smaller than the design needs can pass a config that is off by delta."""
    if verdict.method.startswith("sequential") or verdict.outcome != "pass":
        return []
    shares = {b.bucket: b.expected for b in verdict.buckets if b.expected > 0}
    needed = fixed_sample_size(shares, verdict.design)
    if verdict.n >= needed:
        return []
    return [
        f"  note: {verdict.n} requests cannot promise to catch a "
        f"{100 * verdict.design.delta:.0f}-point shift (this split needs {needed}); "
        "use requests: auto"
    ]


def _flags(flags: Counter[str] | None) -> str:
    if not flags:
        return ""
    named = [f for f in flags if f and f != "-"]
    return f" [Envoy flags {', '.join(named)}]" if named else ""


def _sci(x: float) -> str:
    """1e-06 -> 1e-6: how people write small rates."""
    mantissa, _, exponent = f"{x:.0e}".partition("e")
    return f"{mantissa}e{int(exponent)}" if x < 0.01 else f"{x:g}"
