"""`kind: sticky`: requests carrying the same hash key land on one pod, and different keys
spread over the pods that can serve them (consistent hashing, the course's stickiness demo).

Why a kind of its own: a hashing route's shares hold over many keys, but what a lesson on
sticky sessions asserts is per key ("this user always reaches the same pod"), which no share
test says. Each key is one simulated user: a fresh session (`context.session()`), its first
request alone (a hash cookie Envoy sets then travels with the rest), then its repeats. The
keys are random for each run, so the spread part is a statement about random keys with a
stated false-failure rate; the numbers are in meshlab.checks.hashing and docs/statistics.md.
"""

from __future__ import annotations

import re
import secrets
from collections import Counter
from dataclasses import field
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

from pydantic import field_validator, model_validator

from meshlab.backends.base import Outcome
from meshlab.checks.base import (
    Check,
    CheckContext,
    CheckKind,
    CheckResult,
    ProgressUpdate,
    register,
)
from meshlab.checks.hashing import (
    MAX_KEYS,
    StickyDesign,
    hash_origin,
    key_words,
    sticky_design,
)
from meshlab.checks.hops import LABEL_KEY
from meshlab.checks.origins import client_plan, configured_for
from meshlab.checks.request import RequestedSpec
from meshlab.checks.sampling import Sampler
from meshlab.checks.stats import Design
from meshlab.load.schema import Strict
from meshlab.mesh.expect import ExpectedSplit
from meshlab.mesh.model import HashPolicyPlan
from meshlab.mesh.plan import MeshPlan
from meshlab.mesh.request import ProbeRequest
from meshlab.records import dataclass

POD = "pod"
_KEY_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class HashKeySpec(Strict):
    """`key: {header: x-myval}` (or `cookie: NAME`, `query: NAME`): what each simulated user
    sends a value of its own in."""

    header: str | None = None
    cookie: str | None = None
    query: str | None = None

    @field_validator("header", "cookie", "query")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 256 or not _KEY_NAME.fullmatch(value)):
            shown = value if len(value) <= 60 else value[:60] + "..."
            raise ValueError(
                f"{shown!r} is not a header, cookie or query parameter name: letters, digits "
                "and !#$%&'*+-.^_`|~ (no spaces, '=' or ';')"
            )
        return value

    @model_validator(mode="after")
    def _one(self) -> HashKeySpec:
        named = [k for k in ("header", "cookie", "query") if getattr(self, k) is not None]
        if len(named) != 1:
            raise ValueError(
                "key names one place for the key: {header: x-myval}, {cookie: NAME} or "
                "{query: NAME}" + (f", not {' and '.join(named)}" if named else "")
            )
        return self

    @property
    def kind(self) -> Literal["header", "cookie", "query_parameter"]:
        if self.header is not None:
            return "header"
        return "cookie" if self.cookie is not None else "query_parameter"

    @property
    def name(self) -> str:
        return self.header or self.cookie or self.query or ""

    def __str__(self) -> str:
        return key_words(HashPolicyPlan(self.kind, self.name))


class StickySpec(RequestedSpec):
    kind: Literal["sticky"]
    key: HashKeySpec
    keys: Literal["auto"] | int = "auto"
    per_key: Literal["auto"] | int = "auto"
    by: str = POD  # `pod`, or a pod label (`version`): what "the same" means

    @field_validator("keys", "per_key")
    @classmethod
    def _counts(cls, value: Any) -> Any:
        if value != "auto" and not 2 <= value <= MAX_KEYS:
            raise ValueError(f"{value} must be auto or a number from 2 to {MAX_KEYS}")
        return value

    @field_validator("by")
    @classmethod
    def _by(cls, value: str) -> str:
        if value != POD and not LABEL_KEY.fullmatch(value):
            raise ValueError(f"by: {value[:60]!r} is neither pod nor a pod label key (version)")
        return value

    @model_validator(mode="after")
    def _key_not_fixed(self) -> StickySpec:
        """The check sends each user's own key value: one fixed in `request` would hide it."""
        fixed = {h.lower() for h in self.request.headers}
        if self.key.header is not None and self.key.header.lower() in fixed:
            raise ValueError(
                f"request.headers sets {self.key.header}, the key the check varies per "
                "simulated user: remove it from request.headers"
            )
        if self.key.cookie is not None and "cookie" in fixed:
            raise ValueError("request.headers sets cookie, the key the check varies: remove it")
        return self


@dataclass
class KeyRun:
    """One simulated user: its key value and where its requests went."""

    value: str
    buckets: Counter[str] = field(default_factory=Counter)

    @property
    def sticky(self) -> bool:
        return len(self.buckets) == 1 and not next(iter(self.buckets)).startswith(("HTTP ", "no "))


def bucket_of(by: str) -> Any:
    """The pod that answered (its name, or a label of it); a failure is its own bucket."""

    def bucket(outcome: Outcome) -> str:
        if by == POD and not outcome.failed and outcome.pod is not None:
            return outcome.pod
        return outcome.bucket(by)

    return bucket


def keyed(request: ProbeRequest, key: HashKeySpec, value: str | None) -> ProbeRequest:
    """The request as one user sends it: its key value in the header, cookie or query."""
    if value is None:  # an Envoy-set cookie: the session carries it from the first answer
        return request
    headers = dict(request.headers)
    if key.header is not None:
        headers[key.header] = value
        return ProbeRequest(request.url, request.method, headers, request.origin)
    if key.cookie is not None:
        headers["cookie"] = f"{key.cookie}={value}"
        return ProbeRequest(request.url, request.method, headers, request.origin)
    parts = urlsplit(request.url)
    query = "&".join(q for q in (parts.query, urlencode({key.name: value})) if q)
    url = urlunsplit(parts._replace(query=query))
    return ProbeRequest(url, request.method, headers, request.origin)


def envoy_sets_cookie(key: HashKeySpec, configured: ExpectedSplit) -> bool:
    """route.go ConsistentHashToHashPolicy copies the ttl: with one, Envoy makes the cookie
    on the first answer, so a user starts with none (as a browser does)."""
    return key.cookie is not None and any(
        p.kind == "cookie" and p.name == key.cookie and p.ttl_s is not None
        for p in configured.hashing
    )


def _set_cookie_value(outcome: Outcome, name: str) -> str | None:
    for line in outcome.headers.get("set-cookie", "").split(","):
        head = line.split(";", 1)[0].strip()
        if head.startswith(f"{name}="):
            return head[len(name) + 1 :]
    return None


def _design(spec: StickySpec, design: Design, override: int | None) -> StickyDesign:
    keys = spec.keys if spec.keys != "auto" else None
    per_key = spec.per_key if spec.per_key != "auto" else None
    if override and per_key is None:  # --requests N: the total, shared over the keys
        auto = sticky_design(design, keys)
        per_key = max(2, override // auto.keys)
    return sticky_design(design, keys, per_key)


def _configured(spec: StickySpec, plan: MeshPlan) -> ExpectedSplit:
    request = keyed(spec.request.probe(), spec.key, "k")
    label = "version" if spec.by == POD else spec.by
    return configured_for(request, label, plan)


@register
class StickyKind(CheckKind):
    kind = "sticky"
    spec_model = StickySpec

    def run(self, check: Check, context: CheckContext) -> CheckResult:
        spec: StickySpec = check.spec
        base = spec.request.probe()
        plan = client_plan(base.origin, context.resources, context.plan)
        configured = _configured(spec, plan)
        design = _design(spec, context.design, context.requests_override)
        generated = envoy_sets_cookie(spec.key, configured)
        users: list[KeyRun] = []
        totals: Counter[str] = Counter()
        pods: Counter[str] = Counter()
        stopped = None
        for _ in range(design.keys):
            value = None if generated else secrets.token_hex(8)
            run = Sampler(
                context,
                keyed(base, spec.key, value),
                spec.by,
                session=context.session(),
                bucket_of=bucket_of(spec.by),
            )
            try:
                first = run.send(1)
                run.send(design.per_key - 1)
            finally:
                run.close()
            if generated:
                value = (first and _set_cookie_value(first[0], spec.key.name)) or "(none set)"
            users.append(KeyRun(value or "", Counter(run.counts)))
            totals.update(run.counts)
            pods.update(run.pods)
            sent = sum(totals.values())
            context.progress(ProgressUpdate(sent, design.requests))
            if run.stopped is not None:
                stopped = run.stopped
                break
        context.progress(ProgressUpdate(sum(totals.values()), None, done=True))
        return _result(check, spec, design, users, totals, pods, configured, stopped)

    def planned_requests(
        self, check: Check, plan: MeshPlan, design: Design, override: int | None, limit: int
    ) -> int | None:
        return _design(check.spec, design, override).requests


def _reachable(spec: StickySpec, configured: ExpectedSplit) -> int:
    """How many pods (or label values) the route can send a key to."""
    if spec.by == POD:
        return len(configured.pods)
    served = [b for b, s in configured.shares.items() if s > 0 and b in _labels(configured)]
    return len(served)


def _labels(configured: ExpectedSplit) -> set[str]:
    causes = {c.bucket for c in configured.causes}
    return {b for b in configured.shares if b not in causes and not b.startswith("HTTP ")}


def _result(
    check: Check,
    spec: StickySpec,
    design: StickyDesign,
    users: list[KeyRun],
    totals: Counter[str],
    pods: Counter[str],
    configured: ExpectedSplit,
    stopped: Any,
) -> CheckResult:
    moved = [u for u in users if not u.sticky]
    landed = Counter(next(iter(u.buckets)) for u in users if u.sticky)
    reachable = _reachable(spec, configured)
    unspread = not moved and len(users) >= 2 and reachable >= 2 and len(landed) == 1
    if stopped is not None and not moved:
        outcome = "inconclusive"
    else:
        outcome = "fail" if moved or unspread else "pass"
    what = "pod" if spec.by == POD else f"{spec.by}"
    name = check.name
    lines: list[str]
    if moved:
        worst = max(moved, key=lambda u: len(u.buckets))
        reached = ", ".join(f"{b} ({c})" for b, c in worst.buckets.most_common())
        lines = [
            f"{name} FAILED: not sticky: {len(moved)} of {len(users)} keys reached more than "
            f"one {what} (or failed); key {spec.key.name}={worst.value} reached {reached}",
            *_causes(spec, configured),
        ]
    elif unspread:
        [(only, count)] = landed.items()
        lines = [
            f"{name} FAILED: not spread: all {count} keys landed on {what} {only}, though the "
            f"route can reach {reachable}; the hash does not depend on {spec.key}",
            *_causes(spec, configured),
        ]
    elif outcome == "inconclusive":
        lines = [
            f"{name} inconclusive: budget ({stopped.reason}) after {len(users)} keys: not "
            f"judged, so not passed; {stopped.flag} raises the limit"
        ]
    else:
        spread = ", ".join(f"{b} {c}" for b, c in landed.most_common())
        lines = [
            f"{name} passed: each of {len(users)} keys ({spec.key}) stayed on one {what} for "
            f"all its {design.per_key} requests; keys spread over {len(landed)} ({spread})"
        ]
    lines.append(
        "  what the mesh did: "
        + (", ".join(f"{b} {c}" for b, c in totals.most_common()) or "nothing")
    )
    lines.append(
        f"  sticky test, {len(users)} keys × {design.per_key} requests, "
        f"α={design.spread_alpha:.0e} (keys all on one {what}), "
        f"β={design.miss_beta:.0e} (δ={100 * design.delta:.0f} points of repeats moved)"
    )
    details: dict[str, Any] = {
        "request": {
            "url": spec.request.url,
            "method": spec.request.method,
            "origin": str(spec.request.origin),
        },
        "key": str(spec.key),
        "by": spec.by,
        "route": configured.route,
        "hashing": [key_words(p) for p in configured.hashing],
        "method": "sticky",
        "keys": len(users),
        "per_key": design.per_key,
        "alpha": design.spread_alpha,
        "beta": design.miss_beta,
        "delta": design.delta,
        "reachable": reachable,
        "users": [{"key": u.value, "reached": dict(u.buckets)} for u in users],
        "pods": [{"name": p, "count": c} for p, c in sorted(pods.items())],
    }
    return CheckResult(
        name=name,
        kind=check.kind,
        passed=outcome == "pass",
        outcome=outcome,
        message="\n".join(lines),
        requests=sum(totals.values()),
        points=spec.points,
        expected={},
        observed=dict(totals),
        details=details,
    )


def _causes(spec: StickySpec, configured: ExpectedSplit) -> list[str]:
    """Why a key moved or keys did not spread, read off the route's hash policies."""
    where = configured.route or "the route"
    if not configured.hashing:
        return [
            f"  likely cause: {where} has no consistentHash, so Envoy balances every request "
            "on its own; a DestinationRule `trafficPolicy.loadBalancer.consistentHash: "
            f"{_istio_hint(spec.key)}` for its host makes it sticky"
        ]
    mine = HashPolicyPlan(spec.key.kind, spec.key.name)
    keyed_on = [p for p in configured.hashing if _same_key(p, mine)]
    if not keyed_on:
        others = ", ".join(key_words(p) for p in configured.hashing)
        same_kind = any(p.kind == mine.kind for p in configured.hashing)
        fix = "check the name's spelling" if same_kind else f"hash on {_istio_hint(spec.key)}"
        return [
            f"  likely cause: the route hashes on {others}{hash_origin(configured)}, not on "
            f"{spec.key} that each user sends: {fix}"
        ]
    if len(configured.hashing) > 1:  # route.go: one per hashing weighted destination
        return [
            f"  likely cause: the route picks among weighted destinations at random for every "
            f"request (hashing: {', '.join(key_words(p) for p in configured.hashing)}); a key "
            "sticks to a pod only within one destination"
        ]
    return [f"  the route hashes on {spec.key}{hash_origin(configured)}"]


def _same_key(policy: HashPolicyPlan, mine: HashPolicyPlan) -> bool:
    if policy.kind != mine.kind:
        return False
    if policy.kind == "header":  # Envoy's header names are case-insensitive
        return policy.name.lower() == mine.name.lower()
    return policy.name == mine.name


def _istio_hint(key: HashKeySpec) -> str:
    if key.header is not None:
        return f"{{httpHeaderName: {key.name}}}"
    if key.cookie is not None:
        return f"{{httpCookie: {{name: {key.name}, ttl: 0s}}}}"
    return f"{{httpQueryParameterName: {key.name}}}"
