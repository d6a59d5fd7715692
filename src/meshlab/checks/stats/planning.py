"""Planning: exact operating characteristics of the sequential design (E[N], the cap), and
the anytime interval a page shows."""

from __future__ import annotations

import math
from collections.abc import Mapping

from meshlab.checks.stats.design import DEFAULT_DESIGN, Design, _plan, _prior, normalise_shares
from meshlab.checks.stats.fixed import fixed_sample_size, fixed_sample_size_estimate
from meshlab.checks.stats.sequential import _confidence_sequence, _sequential_decision
from meshlab.records import dataclass

# --------------------------------------------------------------------------------------------
# Planning: exact operating characteristics of the sequential design


@dataclass(frozen=True)
class _OperatingCharacteristic:
    """What a design does for given shares, computed exactly: the chance it fails, passes or stops
    undecided at the cap, and the mean number of requests it sends."""

    p_fail: float
    p_pass: float
    p_cap: float  # undecided at the cap -> "inconclusive"
    mean_n: float


def _looks(design: Design) -> list[int]:
    return sorted({*range(design.batch, design.cap + 1, design.batch), design.cap})


def _sequential_oc(
    shares: Mapping[str, float], design: Design, truth: float | None = None
) -> _OperatingCharacteristic:
    """Exact fail/pass/cap probabilities and E[N] by dynamic programming over (n, S).

    S is the count of the tested bucket (two shares in (0, 1), plus optional 0% buckets that
    receive nothing); ``truth`` is its true share (default: as configured). The state after each
    look is the distribution of S over the runs still going; between looks it is convolved with
    Binomial(batch, truth). The decision rule is the one :class:`SequentialSplitTest` uses.
    """
    plans = _plan(shares, design)
    tested = [plan for plan in plans if plan.role == "tested"]
    looks = _looks(design)
    if not tested:  # a single 100% destination: passes at the first look >= deterministic_n
        if truth is not None:
            raise ValueError("truth applies only to a split with a tested share")
        stop = next((look for look in looks if look >= design.deterministic_n), design.cap)
        done = stop >= design.deterministic_n
        return _OperatingCharacteristic(0.0, 1.0 if done else 0.0, 0.0 if done else 1.0, stop)
    if len(tested) != 1:
        raise NotImplementedError(
            "exact planning covers splits with two shares strictly between 0 and 1"
        )
    plan = tested[0]
    q = plan.share if truth is None else truth
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"truth must be a share in [0, 1], got {q}")
    min_pass = design.deterministic_n if any(p.role in ("zero", "one") for p in plans) else 0
    log_fail, log_pass = -math.log(plan.alpha), -math.log(design.beta)
    offset, mass = 0, [1.0]  # mass[i] = P(S = offset + i and still undecided)
    p_fail = p_pass = mean_n = 0.0
    previous = 0
    for look in looks:
        spread = _convolve_binomial(mass, look - previous, q)
        previous = look
        for i, m in enumerate(spread):
            if not m:
                continue
            decision = _sequential_decision(offset + i, look, plan, log_fail, log_pass)
            if decision < 0:
                p_fail += m
            elif decision > 0 and look >= min_pass:
                p_pass += m
            else:
                continue
            mean_n += look * m
            spread[i] = 0.0
        live = [i for i, m in enumerate(spread) if m]
        if not live:
            return _OperatingCharacteristic(p_fail, p_pass, 0.0, mean_n)
        offset, mass = offset + live[0], spread[live[0] : live[-1] + 1]
    p_cap = math.fsum(mass)
    return _OperatingCharacteristic(p_fail, p_pass, p_cap, mean_n + design.cap * p_cap)


def _convolve_binomial(mass: list[float], steps: int, q: float) -> list[float]:
    """Distribution of S after ``steps`` more requests, each landing in the bucket w.p. q."""
    kernel = [math.comb(steps, j) * q**j * (1.0 - q) ** (steps - j) for j in range(steps + 1)]
    spread = [0.0] * (len(mass) + steps)
    for i, m in enumerate(mass):
        if m:
            for j, w in enumerate(kernel):
                spread[i + j] += m * w
    return spread


def expected_requests(expected: Mapping[str, float], design: Design = DEFAULT_DESIGN) -> float:
    """E[N] of the sequential test when the config is correct (exact DP with ``batch`` looks).

    For the benchmark: requests a run used versus what the design expects. Covers two shares in
    (0, 1) (plus 0% buckets) and a single 100% destination; three or more tested shares raise
    NotImplementedError (simulate instead). E[N] does not depend on alpha: passing needs only
    the beta-evidence.
    """
    return _sequential_oc(normalise_shares(expected), design).mean_n


def anytime_interval(
    share: float, count: int, n: int, alpha: float, design: Design = DEFAULT_DESIGN
) -> tuple[float, float]:
    """The 1 - alpha confidence sequence for a bucket configured at ``share``, with the prior
    the sequential test uses. At ``alpha = design.beta`` it is the interval that decides a
    pass: a passing bucket's interval lies inside its band."""
    return _confidence_sequence(count, n, _prior(share, design.delta), alpha)


def sequential_cap(expected: Mapping[str, float], design: Design = DEFAULT_DESIGN) -> int:
    """The cap a sequential check uses: twice the fixed-N sample size (whole batches), or the
    design's cap if that is larger. A correct config stops at E[N] long before either.

    With the lower margin p/2 a small canary's band edge sits close to p, and 2400 requests
    often cannot separate them: a 5% canary that gets 2.5% would end "inconclusive" (a pass)
    in 28% of runs. At twice the fixed-N size the exact miss rate including the cap is back
    under beta (95/5: 3e-5 at cap 7340; 99/1: 1e-5 at cap 37690), and a correct config still
    stops at E[N] long before it.
    """
    try:
        needed = 2 * fixed_sample_size(expected, design)
    except (ValueError, NotImplementedError):
        return design.cap
    return max(design.cap, -(-needed // design.batch) * design.batch)


def sequential_cap_estimate(expected: Mapping[str, float], design: Design = DEFAULT_DESIGN) -> int:
    """:func:`sequential_cap` from the normal approximation of the fixed N, 5% off (3.8
    million requests at 9999/1, in microseconds): enough to refuse a split no budget can
    judge before sizing it exactly."""
    try:
        needed = 2 * round(0.95 * fixed_sample_size_estimate(expected, design))
    except (ValueError, NotImplementedError):
        return design.cap
    return max(design.cap, -(-needed // design.batch) * design.batch)
