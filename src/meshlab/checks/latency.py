"""`kind: latency`: the share of requests held back by about D (a fault `delay`), judged by
the split test, and optional upper bounds on latency percentiles.

Why a kind of its own: a delay changes neither who answers nor the status, only *when*; the
split and status kinds cannot see it. Each request is counted `delayed` when it took at least
THRESHOLD of D, else `prompt`, so the shares are binomial like a split's and the split test
(`judge_shares`) judges them with its error rates (docs/statistics.md, "The latency test").

The threshold has margin both ways: a delayed request can never take less than D (Envoy's
fault filter holds it for D before routing it, and the client's clock runs around all of
that), and an undelayed one on a loaded machine takes milliseconds, far below 0.8·D with D of
at least MIN_DELAY_S. Latency is measured by the client around each request (the time a user
waits), which is never less than Envoy's own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, field_validator

from meshlab.backends.base import Outcome
from meshlab.checks.base import Check, CheckContext, CheckKind, CheckResult, register
from meshlab.checks.origins import client_plan, configured_for
from meshlab.checks.split import SampledSpec, judge_shares, planned_requests
from meshlab.checks.stats import Design
from meshlab.load.istio.common import parse_duration
from meshlab.mesh.expect import NEGLIGIBLE, ExpectedSplit, Source
from meshlab.mesh.plan import MeshPlan

DELAYED, PROMPT, UNMEASURED = "delayed", "prompt", "unmeasured"
THRESHOLD = 0.8  # a request is delayed when it took at least 0.8·D
MIN_DELAY_S = 0.1  # below this, scheduling noise on a busy machine nears the threshold
MAX_DELAY_S = 10.0  # the embedded client gives up on a request after a while
_PERCENTILE = r"^p(50|75|90|95|99)$"


def _seconds(text: str, what: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


class LatencySpec(SampledSpec):
    kind: Literal["latency"]
    by: Literal["delay"] = "delay"
    # D: the delay a request is judged by; default: the fault delay of the request's route
    delay: str | None = None
    # upper bounds on percentiles of every request's latency, e.g. {p50: 100ms, p99: 2s}
    within: dict[str, str] = Field(default={})

    @field_validator("delay")
    @classmethod
    def _delay(cls, value: str | None) -> str | None:
        if value is not None:
            seconds = _seconds(value, "delay")
            if not MIN_DELAY_S <= seconds <= MAX_DELAY_S:
                raise ValueError(
                    f"delay: {value} is outside {MIN_DELAY_S * 1000:g}ms..{MAX_DELAY_S:g}s: a "
                    "shorter delay is lost in a busy machine's noise, a longer one in the "
                    "client's timeout; configure a fault delay in that range"
                )
        return value

    @field_validator("within")
    @classmethod
    def _within(cls, value: dict[str, str]) -> dict[str, str]:
        for key, bound in value.items():
            if not re.fullmatch(_PERCENTILE, key):
                raise ValueError(
                    f"within: {key!r} is not a percentile: use p50, p75, p90, p95 or p99"
                )
            _seconds(str(bound), f"within.{key}")
        return value

    @field_validator("expect")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key in value:
                if key not in (DELAYED, PROMPT):
                    raise ValueError(
                        f"expect: {key!r} is not a bucket of the latency kind: use "
                        f"{DELAYED} (took about the delay or more) and {PROMPT}, "
                        "e.g. {delayed: 50, prompt: 50}"
                    )
        return value

    @property
    def hop(self) -> str | None:
        return None


def delay_of(spec: LatencySpec, configured: ExpectedSplit) -> float | None:
    """D: the check's own `delay`, else the configured fault delay of the request's route."""
    return parse_duration(spec.delay) if spec.delay else configured.delay_s


def configured_latency(configured: ExpectedSplit, delay: float) -> ExpectedSplit:
    """What the configuration predicts at threshold THRESHOLD·D: a request is delayed when
    the route's own fault delay plus what lies behind the route (a fault delay on a call the
    answering pod makes, `configured.behind`; drawn independently) reaches the threshold,
    else prompt. A share under NEGLIGIBLE either way is predicted as none."""
    seen = ExpectedSplit(route=configured.route, delay_s=configured.delay_s)
    own = {0.0: 1.0}
    if configured.delay_s is not None and configured.delay_share > 0:
        own = {0.0: 1.0 - configured.delay_share, configured.delay_s: configured.delay_share}
    behind = dict(configured.behind)
    behind[0.0] = behind.get(0.0, 0.0) + max(0.0, 1.0 - sum(behind.values()))
    threshold = THRESHOLD * delay - 1e-9
    share = sum(p * q for a, p in own.items() for b, q in behind.items() if a + b >= threshold)
    share = 0.0 if share < NEGLIGIBLE else 1.0 if share > 1.0 - NEGLIGIBLE else share
    if share > 0:
        own_part = configured.delay_s is not None and configured.delay_s >= threshold
        source = configured.delay_source if own_part else Source("a fault delay behind it", None)
        seen.add(DELAYED, share, source)
    if share < 1:
        route = Source(configured.route or "the request's route (no fault delay)", None)
        seen.add(PROMPT, 1.0 - share, route if share == 0 else None)
    return seen


def latency_bucketer(delay: float, seen: list[float]) -> Callable[[Outcome], str]:
    """Delayed at THRESHOLD·D or more; every measured latency is also kept in `seen`."""

    def bucket(outcome: Outcome) -> str:
        if outcome.latency is None:
            return UNMEASURED
        seen.append(outcome.latency)
        return DELAYED if outcome.latency >= THRESHOLD * delay else PROMPT

    return bucket


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def bound_failures(within: dict[str, str], seen: list[float]) -> list[str]:
    """Each percentile bound the observed latencies break, in words."""
    if not seen:
        return (
            [f"no latency was measured, so {', '.join(within)} cannot be judged"] if within else []
        )
    broken = []
    for key, bound in within.items():
        value = percentile(seen, float(key[1:]))
        if value > parse_duration(bound):
            broken.append(f"{key} latency {value * 1000:.0f}ms is over the bound {bound}")
    return broken


@register
class LatencyKind(CheckKind):
    kind = "latency"
    spec_model = LatencySpec

    def run(self, check: Check, context: CheckContext) -> CheckResult:
        spec: LatencySpec = check.spec
        request = spec.request.probe()
        plan = client_plan(request.origin, context.resources, context.plan)
        configured = configured_for(request, "version", plan, context.resources)
        delay = delay_of(spec, configured)
        if delay is None:
            return CheckResult(
                check.name,
                self.kind,
                passed=False,
                outcome="error",
                message=(
                    f"{check.name}: no delay to judge by: the request's route "
                    f"({configured.route or 'none'}) injects no fault delay; name one with "
                    "`delay: 300ms`"
                ),
                requests=0,
                points=spec.points,
            )
        seen: list[float] = []
        expected = configured_latency(configured, delay)
        result = judge_shares(check, context, spec, expected, latency_bucketer(delay, seen))
        result.details["latency"] = _summary(delay, seen)
        if seen:
            shown = ", ".join(f"p{p} {percentile(seen, p) * 1000:.0f}ms" for p in (50, 90, 99))
            result.message += (
                f"\n  latency seen: {shown} (delayed: {THRESHOLD * delay * 1000:.0f}ms or more)"
            )
        broken = bound_failures(spec.within, seen)
        if broken and result.outcome == "pass":
            result.passed, result.outcome = False, "fail"
        if broken:
            result.message += "\n  " + "\n  ".join(broken)
        return result

    def planned_requests(
        self, check: Check, plan: MeshPlan, design: Design, override: int | None, limit: int
    ) -> int | None:
        spec: LatencySpec = check.spec
        configured = configured_for(spec.request.probe(), "version", plan)
        delay = delay_of(spec, configured)
        if delay is None:
            return None
        return planned_requests(
            spec, configured_latency(configured, delay), design, override, limit
        )


def _summary(delay: float, seen: list[float]) -> dict[str, Any]:
    out: dict[str, Any] = {"delay_s": delay, "threshold_s": THRESHOLD * delay}
    if seen:
        out |= {f"p{p}_s": percentile(seen, p) for p in (50, 90, 99)}
        out["max_s"] = max(seen)
    return out
