"""`kind: status`: the shares of responses by HTTP status, status class or Envoy response flag.

Why a kind of its own: a fault-injection lesson is about what the *user* sees (half the
requests answered 503 by the mesh itself), not about which pod served the others, and a split
check by pod label hides those answers in a failure bucket. The verdict is the split test
(`judge_shares`), so its error rates are the split check's (docs/statistics.md).

`expect: configured` reads the route's configuration the way the split check does, then names
each share by what a client sees: a pod's answer is 200 (flag `-`, class `2xx`; the stand-ins
answer 200 unless their image is meant to fail), an injected abort is its status (flag `FI`),
and a request the mesh cannot route keeps the status and flag of its known cause.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Tag, field_validator, model_validator

from meshlab.backends.base import Hop, Outcome
from meshlab.checks.base import Check, CheckContext, CheckKind, CheckResult, register
from meshlab.checks.hops import (
    HOP_FAILURE,
    NOT_CALLED,
    check_service_name,
    hop_bucket,
    service_host,
)
from meshlab.checks.origins import client_plan, configured_for
from meshlab.checks.request import MAPPING, word_or_mapping
from meshlab.checks.split import SampledSpec, judge_shares, planned_requests
from meshlab.checks.stats import Design
from meshlab.load.schema import Strict
from meshlab.mesh.expect import Cause, ExpectedSplit, Source
from meshlab.mesh.plan import MeshPlan

NO_RESPONSE = "no response"
SERVED_STATUS = 200  # what a stand-in pod answers to a request it serves

_STATUS = re.compile(r"^[1-5]\d\d$")
_CLASS = re.compile(r"^[1-5]xx$")
_FLAGS = re.compile(r"^(-|[A-Z]+(,[A-Z]+)*)$")  # Envoy's %RESPONSE_FLAGS%: "-" when none
_KEYS = {
    "status": (_STATUS, "an HTTP status such as 200 or 503"),
    "class": (_CLASS, "a status class such as 2xx or 5xx"),
    "flag": (_FLAGS, "an Envoy response flag such as FI, UH, UO or - (none)"),
}
By = Literal["status", "class", "flag"]


class StatusHopBy(Strict):
    """`by: {service: fleetman-vehicle-telemetry, by: status}`: what that Service's hop
    answered its caller, wherever it sits in the chain (status, class or flags)."""

    service: str
    by: By = "status"

    @field_validator("service")
    @classmethod
    def _service(cls, value: str) -> str:
        return check_service_name(value)


class StatusSpec(SampledSpec):
    kind: Literal["status"]
    # narrows the split check's free label (and its hop form) to what a client sees
    by: Annotated[
        Annotated[By, Tag("str")] | Annotated[StatusHopBy, Tag(MAPPING)],
        Discriminator(word_or_mapping),
    ] = "status"  # type: ignore[assignment]

    @property
    def field(self) -> By:
        """What is counted: status, class or flag (at the hop, for `by: {service: ...}`)."""
        return self.by.by if isinstance(self.by, StatusHopBy) else self.by

    @property
    def label(self) -> str:
        return self.field

    @field_validator("expect", mode="before")
    @classmethod
    def _string_keys(cls, value: Any) -> Any:
        """YAML reads `200: 50` with an integer key; a status is a name here."""
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _keys_name_what_by_counts(self) -> StatusSpec:
        if isinstance(self.expect, dict):
            pattern, what = _KEYS[self.field]
            hop = isinstance(self.by, StatusHopBy)
            for key in self.expect:
                if key == NO_RESPONSE or pattern.fullmatch(key):
                    continue
                if hop and (key == NOT_CALLED or HOP_FAILURE.fullmatch(key)):
                    continue
                also = (
                    f', "{NOT_CALLED}" those that never reached the Service, '
                    '"HTTP 503 at SERVICE (FLAGS)" those whose chain failed before it'
                    if hop
                    else ""
                )
                raise ValueError(
                    f"expect: {key!r} is not {what} (by: {self.field}); "
                    f'"{NO_RESPONSE}" counts requests that got no answer{also}'
                )
        return self


def bucket_by(by: By) -> Callable[[Outcome | Hop], str]:
    """How an outcome (or a hop of its chain) is counted: its status, its status class, or
    Envoy's flags."""

    def bucket(outcome: Outcome | Hop) -> str:
        if outcome.status is None:
            return NO_RESPONSE
        if by == "status":
            return str(outcome.status)
        if by == "class":
            return f"{outcome.status // 100}xx"
        return outcome.response_flags or "-"

    return bucket


def status_bucketer(spec: StatusSpec, namespace: str) -> Callable[[Outcome], str]:
    """The answer the client got, or (`by: {service: ...}`) the one that hop's caller got:
    the same hop bucketing as the split kind, reading status instead of a label."""
    count = bucket_by(spec.field)
    if not isinstance(spec.by, StatusHopBy):
        return count
    service, origin = service_host(spec.by.service, namespace), spec.request.origin
    return lambda outcome: hop_bucket(outcome, service, namespace, count, origin)


def as_seen_by_client(configured: ExpectedSplit, by: By) -> ExpectedSplit:
    """The configured split renamed to what a client sees: pods answer 200, an abort fault
    answers its status (flag FI), a known cause answers what its effect says."""
    causes = {c.bucket: c for c in configured.causes}
    # the same pods and ejections: the warm-up meets a broken pod whatever the buckets' names
    seen = ExpectedSplit(route=configured.route, pods=configured.pods)
    seen.ejections = configured.ejections
    for bucket, share in configured.shares.items():
        sources = configured.sources.get(bucket, [])
        name = _name(*_status_and_flag(bucket, causes.get(bucket), sources), by)
        seen.add(name, share)
        for source in sources:
            if source not in seen.sources[name]:
                seen.sources[name].append(source)
    seen.causes = [
        replace(c, bucket=_name(*_status_and_flag(c.bucket, c, []), by)) for c in configured.causes
    ]
    return seen


def _status_and_flag(
    bucket: str, cause: Cause | None, sources: list[Source]
) -> tuple[int | None, str]:
    if cause is not None:
        code = re.match(r"^(\d{3})\b", cause.effect)
        return (int(code.group(1)), cause.flags or "-") if code else (None, "-")
    if bucket.startswith("HTTP ") and bucket[5:].isdigit():
        # an abort fault (Envoy flags it FI), or a redirect or direct response (no flag)
        faulted = any(s.what.endswith("fault.abort") for s in sources)
        # a route's timeout answers 504 itself (flag UT); a status from behind a pod, none
        timed_out = any(" timeout (" in s.what for s in sources)
        return int(bucket[5:]), "FI" if faulted else "UT" if timed_out else "-"
    return SERVED_STATUS, "-"


def _name(status: int | None, flag: str, by: By) -> str:
    if status is None:
        return NO_RESPONSE
    return {"status": str(status), "class": f"{status // 100}xx", "flag": flag}[by]


@register
class StatusKind(CheckKind):
    kind = "status"
    spec_model = StatusSpec

    def run(self, check: Check, context: CheckContext) -> CheckResult:
        spec: StatusSpec = check.spec
        request = spec.request.probe()
        plan = client_plan(request.origin, context.resources, context.plan)
        configured = configured_for(
            request, None if spec.hop else "version", plan, context.resources
        )
        seen = as_seen_by_client(configured, spec.field)
        bucket_of = status_bucketer(spec, context.plan.client_namespace)
        return judge_shares(check, context, spec, seen, bucket_of=bucket_of)

    def planned_requests(
        self, check: Check, plan: MeshPlan, design: Design, override: int | None, limit: int
    ) -> int | None:
        spec: StatusSpec = check.spec
        configured = configured_for(spec.request.probe(), None if spec.hop else "version", plan)
        return planned_requests(
            spec, as_seen_by_client(configured, spec.field), design, override, limit
        )
