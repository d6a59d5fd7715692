"""Consistent hashing as checks judge it: the numbers of the sticky test, and the split
check's verdict when the route hashes on a key every one of its requests carries.

Why here: `kind: sticky` and `kind: split` (whose `expect: configured` would otherwise
predict the many-keys shares for requests that all carry one key) share the design, and
neither imports the other. The design is stated in docs/statistics.md ("The sticky test").
"""

from __future__ import annotations

import math
from typing import Any

from meshlab.checks.base import Check, CheckContext, CheckResult
from meshlab.checks.sampling import Sampler
from meshlab.checks.stats import Design
from meshlab.mesh.expect import ExpectedSplit
from meshlab.mesh.model import HashPolicyPlan
from meshlab.mesh.request import ProbeRequest
from meshlab.records import dataclass

# The largest share of random keys one pod may get from a correct hash over two or more
# pods. Envoy's ring (1024 points at least, istiod's default) or Maglev table (65537) gives
# each of two pods 50% +- a few points; 0.7 leaves room for small rings and uneven pods.
MAX_KEY_SHARE = 0.7
MAX_KEYS = 1000


@dataclass(frozen=True)
class StickyDesign:
    """How many keys and requests per key a sticky test sends, and why (docs/statistics.md).

    keys: enough random keys that a correct hash puts them all on one pod with chance at
        most alpha (all on one pod: at most MAX_KEY_SHARE ** (keys - 1)).
    per_key: enough repeats (requests after a key's first) that a balancer which moves a
        repeat off the key's first pod with chance delta or more passes with chance at most
        beta ((1 - delta) ** repeats).
    """

    keys: int
    per_key: int
    alpha: float
    beta: float
    delta: float

    @property
    def requests(self) -> int:
        return self.keys * self.per_key

    @property
    def spread_alpha(self) -> float:
        """The chance a correct hash puts every key on one pod, at these keys."""
        return float(MAX_KEY_SHARE ** (self.keys - 1))

    @property
    def miss_beta(self) -> float:
        """The chance a balancer that moves delta of repeats looks sticky, at these numbers."""
        return float((1 - self.delta) ** (self.keys * (self.per_key - 1)))


def repeats_needed(design: Design) -> int:
    """Repeats after a key's first request so that (1 - delta) ** repeats <= beta."""
    return math.ceil(math.log(design.beta) / math.log(1 - design.delta))


def sticky_design(
    design: Design, keys: int | None = None, per_key: int | None = None
) -> StickyDesign:
    """The sticky test's numbers: `keys`/`per_key` as the lab fixes them, else the least that
    meet alpha (keys spread) and beta (repeats caught)."""
    if keys is None:
        keys = 1 + math.ceil(math.log(design.alpha) / math.log(MAX_KEY_SHARE))
    if per_key is None:
        per_key = max(2, 1 + math.ceil(repeats_needed(design) / keys))
    return StickyDesign(keys, per_key, design.alpha, design.beta, design.delta)


def one_key_requests(design: Design) -> int:
    """A split check on a hashing route: one key, its first request and the repeats."""
    return 1 + repeats_needed(design)


def key_words(policy: HashPolicyPlan) -> str:
    """`header x-myval`, `cookie user`, `query parameter u`, `the client's source address`."""
    if policy.kind == "source_ip":
        return "the client's source address"
    return f"{policy.kind.replace('_', ' ')} {policy.name}"


def hash_origin(configured: ExpectedSplit) -> str:
    """Where the hashing is set: ` (DestinationRule default/x, rules.yaml:12)`."""
    return f" ({configured.hash_source})" if configured.hash_source else ""


def judge_one_key(
    check: Check,
    context: CheckContext,
    request: ProbeRequest,
    by: str,
    configured: ExpectedSplit,
    policy: HashPolicyPlan,
    fixed_n: int | None,
) -> CheckResult:
    """`expect: configured` on a route that hashes on a key the request carries: every
    request of the session lands on one pod, so the configured shares (which hold over many
    keys) are not what one session sees. Passed when all requests landed in one configured
    bucket; a repeat that moved is caught with chance 1 - beta (the sticky test's repeats)."""
    n = fixed_n or one_key_requests(context.design)
    run = Sampler(context, request, by)
    try:
        run.send(1)
        run.send(n - 1)
    finally:
        run.report(None, None, done=True)
        run.close()
    served = {b for b, share in configured.shares.items() if share > 0}
    # an abort fault fires per request, hashed or not: its share is not the key's pod
    aborts = {
        b for b in served if any(s.what.endswith("fault.abort") for s in configured.sources[b])
    }
    buckets = [(b, c) for b, c in run.counts.most_common() if b not in aborts]
    passed = len(buckets) <= 1 and all(b in served or not served for b, _ in buckets)
    passed = passed and (bool(buckets) or bool(aborts))
    stopped = run.stopped
    outcome = "pass" if passed and stopped is None else "fail" if not passed else "inconclusive"
    key = key_words(policy)
    shares = ", ".join(f"{b} {100 * s:.0f}%" for b, s in configured.shares.items())
    seen = ", ".join(f"{b} {c}" for b, c in run.counts.most_common()) or "nothing"
    landed = buckets[0][0] if buckets else "none (the fault aborted them)"
    if outcome == "pass":
        head = (
            f"{check.name} passed: "
            + ("the requests the fault did not abort" if aborts else f"all {run.sent} requests")
            + f" went to {landed}: the route "
            f"hashes on {key}{hash_origin(configured)}, which every request carries, so one "
            "session sticks to one pod"
        )
    elif outcome == "fail":
        head = (
            f"{check.name} FAILED: the route hashes on {key}{hash_origin(configured)}, which "
            f"every request carries, so all should land on one pod; they reached {seen}"
        )
    else:
        head = f"{check.name} inconclusive: budget ({stopped.reason if stopped else ''}): {seen}"
    lines = [
        head,
        f"  the configured shares ({shares}) hold over many keys, not for one: "
        "a `kind: sticky` check judges the spread",
        f"  one-key test, N={run.sent}, β={context.design.beta:g}, "
        f"δ={100 * context.design.delta:.0f} points",
    ]
    details: dict[str, Any] = {
        "request": {"url": request.url, "method": request.method, "origin": str(request.origin)},
        "by": by,
        "expect": "configured",
        "route": configured.route,
        "method": "one-key (hashed route)",
        "hash_key": key,
        "pods": [{"name": p, "count": c} for p, c in sorted(run.pods.items())],
    }
    return CheckResult(
        name=check.name,
        kind=check.kind,
        passed=outcome == "pass",
        outcome=outcome,
        message="\n".join(lines),
        requests=run.sent,
        points=check.spec.points,
        expected=dict(configured.shares),
        observed=dict(run.counts),
        details=details,
    )
