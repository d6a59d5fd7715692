"""The sequential test: a mixture confidence sequence per tested share, valid however often
the caller looks (Ville's inequality), so requests can go in batches until a verdict."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from meshlab.checks.stats import special
from meshlab.checks.stats.design import (
    _Q_MAX,
    _Q_MIN,
    DEFAULT_DESIGN,
    SEQUENTIAL_METHOD,
    BucketVerdict,
    Design,
    Outcome,
    SplitVerdict,
    Status,
    _BucketPlan,
    _check_counts,
    _extra_plan,
    _plan,
    normalise_shares,
)

# --------------------------------------------------------------------------------------------
# The mixture martingale and its confidence sequence


def _log_mixture(s: int, n: int, prior: tuple[float, float]) -> Callable[[float], float]:
    """q -> log M_n(q): the Beta-mixture likelihood ratio against the share q (0 < q < 1).

    M_n(q) = B(a + S, b + n - S) / B(a, b) / (q^S (1 - q)^(n - S)). Under a true share q it is a
    nonnegative martingale starting at 1, so by Ville's inequality it ever reaches 1/x with
    probability at most x, however often and whenever one looks.
    """
    a, b = prior
    common = float(special.betaln(a + s, b + n - s) - special.betaln(a, b))

    def log_m(q: float) -> float:
        hits = s * math.log(q) if s else 0.0
        misses = (n - s) * math.log1p(-q) if n > s else 0.0
        return common - hits - misses

    return log_m


def _root(f: Callable[[float], float], lo: float, hi: float) -> float:
    return special.brentq(f, lo, hi, xtol=1e-13, rtol=1e-12)


def _confidence_sequence(
    s: int, n: int, prior: tuple[float, float], alpha: float
) -> tuple[float, float]:
    """{q : M_n(q) < 1/alpha}: an interval (log M_n is convex in q) valid at any stopping time."""
    if n == 0:
        return (0.0, 1.0)
    level = -math.log(alpha)
    phat = s / n
    log_m = _log_mixture(s, n, prior)

    def excess(q: float) -> float:
        return log_m(q) - level

    # M_n(phat) <= 1 (a mixture never beats the maximum likelihood), so excess(phat) < 0.
    lower = 0.0
    if s > 0 and excess(_Q_MIN) > 0.0:
        lower = _root(excess, _Q_MIN, min(phat, _Q_MAX))
    upper = 1.0
    if s < n and excess(_Q_MAX) > 0.0:
        upper = _root(excess, max(phat, _Q_MIN), _Q_MAX)
    return (lower, upper)


def _sequential_decision(
    s: int, n: int, plan: _BucketPlan, log_fail: float, log_pass: float
) -> int:
    """-1 = evidence the share is not ``plan.share``; +1 = evidence it is inside the band; 0.

    Pass evidence needs M_n >= 1/beta at each band edge inside (0, 1) *and* the observed share
    inside the band: then M_n is at least as large at every share beyond that edge, so a share
    outside the band passes with probability <= beta.
    """
    if n == 0:
        return 0
    log_m = _log_mixture(s, n, plan.prior)
    if log_m(plan.share) >= log_fail:
        return -1
    phat = s / n
    for edge, inside in (
        (plan.band[0], phat > plan.band[0]),
        (plan.band[1], phat < plan.band[1]),
    ):
        if 0.0 < edge < 1.0 and not (inside and log_m(edge) >= log_pass):
            return 0
    return 1


def _fill_mirror(verdicts: list[BucketVerdict], plans: tuple[_BucketPlan, ...]) -> None:
    """The untested bucket of a two-way split is the complement of the tested one."""
    roles = {plan.name: plan.role for plan in plans}
    tested = next((v for v in verdicts if roles.get(v.bucket) == "tested"), None)
    if tested is None:
        return
    lo, hi = tested.interval
    for i, verdict in enumerate(verdicts):
        if roles.get(verdict.bucket) == "mirror":
            verdicts[i] = BucketVerdict(
                verdict.bucket,
                verdict.expected,
                verdict.count,
                verdict.n,
                verdict.band,
                (1.0 - hi, 1.0 - lo),
                tested.status,
                tested.alpha,
            )


def _deterministic_status(plan: _BucketPlan, count: int, n: int, design: Design) -> Status:
    """0% buckets fail on any request, 100% buckets on any request elsewhere (H0 forbids both).

    Passing needs ``design.deterministic_n`` requests so that a leak of ``delta`` would have
    shown up with probability >= 1 - beta.
    """
    contrary = count if plan.role == "zero" else n - count
    if contrary > 0:
        return "off"
    return "ok" if n >= design.deterministic_n else "undecided"


def _ordered_plans(
    plans: tuple[_BucketPlan, ...], counts: Mapping[str, int], design: Design
) -> list[_BucketPlan]:
    known = {plan.name for plan in plans}
    extras = sorted(name for name in counts if name not in known)
    return [*plans, *(_extra_plan(name, design) for name in extras)]


def _combine(verdicts: list[BucketVerdict], n: int, cap: int | None) -> Outcome:
    if any(v.status == "off" for v in verdicts):
        return "fail"
    if n > 0 and all(v.status == "ok" for v in verdicts):
        return "pass"
    if cap is not None and n >= cap:
        return "inconclusive"
    return "continue"


# --------------------------------------------------------------------------------------------
# Sequential test


_NONE = (0.0, 1.0)  # an interval not worked out (observe's `intervals=False`)


class SequentialSplitTest:
    """Anytime-valid check of a split: feed cumulative counts until the outcome is decided.

    Uses a mixture confidence sequence per tested share (Beta prior of mean p and sd delta):

    * fail as soon as M_n(p) >= m/alpha for some tested share p (m = number of tested shares),
      or as soon as a 0% bucket (configured or not, e.g. ``"HTTP 503"``) sees a request;
    * pass once every tested share has M_n >= 1/beta at its band edges with the observed share
      inside the band, and every 0%/100% bucket has held for ``design.deterministic_n`` requests;
    * at ``design.cap`` requests an undecided check is ``"inconclusive"`` (counts as a pass).

    Looking after every request, every batch or irregularly does not change the bounds:
    P(false fail) <= alpha and P(pass | a share off by >= its margin) <= beta.
    """

    def __init__(self, expected: Mapping[str, float], design: Design = DEFAULT_DESIGN) -> None:
        self.design = design
        self.expected = normalise_shares(expected)
        self._plans = _plan(self.expected, design)
        self._last: dict[str, int] = {}

    def observe(self, counts: Mapping[str, int], *, intervals: bool = True) -> SplitVerdict:
        """Judge the cumulative counts so far; stop sending once the outcome is not "continue".

        Counts must be cumulative: a bucket's count or the total going down raises ValueError,
        because restarting the count silently would void the error bounds.

        `intervals=False` gives the same outcome and statuses with every interval left at
        (0, 1): for a look that only says whether to go on (each interval is a root search,
        most of a look's cost). Observing the same counts again gives the full verdict.
        """
        n = _check_counts(counts)
        for name, before in self._last.items():
            if counts.get(name, 0) < before:
                raise ValueError(
                    f"counts must be cumulative: {name!r} went from {before} to "
                    f"{counts.get(name, 0)}"
                )
        self._last = dict(counts)
        design = self.design
        verdicts: list[BucketVerdict] = []
        for plan in _ordered_plans(self._plans, counts, design):
            count = counts.get(plan.name, 0)
            if plan.role == "mirror":  # filled in from the tested bucket below
                verdicts.append(
                    BucketVerdict(
                        plan.name,
                        plan.share,
                        count,
                        n,
                        plan.band,
                        (0.0, 1.0),
                        "undecided",
                        plan.alpha,
                    )
                )
                continue
            status: Status
            if plan.role == "tested":
                decision = _sequential_decision(
                    count, n, plan, -math.log(plan.alpha), -math.log(design.beta)
                )
                status = "off" if decision < 0 else "ok" if decision > 0 else "undecided"
            else:
                status = _deterministic_status(plan, count, n, design)
            interval = (
                _confidence_sequence(count, n, plan.prior, plan.alpha) if intervals else _NONE
            )
            verdicts.append(
                BucketVerdict(
                    plan.name, plan.share, count, n, plan.band, interval, status, plan.alpha
                )
            )
        _fill_mirror(verdicts, self._plans)
        return SplitVerdict(
            outcome=_combine(verdicts, n, design.cap),
            n=n,
            buckets=tuple(verdicts),
            method=SEQUENTIAL_METHOD,
            design=design,
        )
