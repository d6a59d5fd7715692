"""The design of a split test (error rates, shift to detect, batches, cap), its verdict types,
and the per-bucket plan: which shares are tested and with which band."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

from meshlab.records import dataclass

Outcome = Literal["pass", "fail", "continue", "inconclusive"]
Status = Literal["ok", "off", "undecided"]
_Role = Literal["tested", "mirror", "zero", "one"]

SEQUENTIAL_METHOD = "sequential test (mixture confidence sequence)"
FIXED_METHOD = "fixed-N exact binomial test (Clopper-Pearson)"

# Brackets for root finding: the interval edges live strictly inside (0, 1).
_Q_MIN = 1e-300
_Q_MAX = math.nextafter(1.0, 0.0)


@dataclass(frozen=True)
class Design:
    """The error contract of one split check; the defaults make grading CI flake-free.

    alpha: false-failure rate per check. Graders see about ``alpha x checks run`` false
        failures in total, so 1e-6 keeps a whole course well below one flake.
    beta: chance of passing a config whose share is off by ``delta`` (or more).
    delta: the smallest absolute shift of a share that must be caught. The lower margin is
        ``min(delta, p/2)`` so that a small canary (10%) receiving almost nothing (1%) fails.
    batch: the caller looks every ``batch`` requests. The verdict is valid for any looking
        schedule; ``batch`` only feeds planning (:func:`expected_requests`).
    cap: stop here; a check still undecided at ``cap`` requests is ``"inconclusive"``.
    """

    alpha: float = 1e-6
    beta: float = 1e-3
    delta: float = 0.10
    batch: int = 10
    cap: int = 2400

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "delta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"Design.{name} must be a number, got {value!r}")
            if not 0.0 < value < 1.0:
                raise ValueError(f"Design.{name} must lie strictly between 0 and 1, got {value}")
        for name in ("batch", "cap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Design.{name} must be a positive integer, got {value!r}")

    @property
    def deterministic_n(self) -> int:
        """Requests needed before a 0% or 100% share may pass.

        Such shares are checked deterministically (one contrary request fails), so the only
        risk is a leak of rate >= delta that has not shown up yet: (1 - delta)^n <= beta.
        """
        return math.ceil(math.log(self.beta) / math.log1p(-self.delta))


DEFAULT_DESIGN = Design()


@dataclass(frozen=True)
class BucketVerdict:
    """What the data say about one destination (or one unexpected response class).

    ``status``: ``"off"`` = evidence the share differs from ``expected`` (the check fails);
    ``"ok"`` = evidence the share lies inside ``band`` (sequential) or no evidence against
    ``expected`` at the requested N (fixed-N, where N supplies the power); ``"undecided"``
    otherwise. ``interval`` is the 1 - alpha_b confidence interval of the share: anytime-valid in
    the sequential test, Clopper-Pearson in the fixed-N test. For 0%/100% buckets, which are
    judged deterministically, it is informational (Jeffreys-prior mixture / Clopper-Pearson at
    alpha). The larger share of a two-way split mirrors the tested one: 1 - its interval.
    ``alpha`` is the level the interval was computed at (alpha_b: Bonferroni for tested shares).
    """

    bucket: str
    expected: float
    count: int
    n: int
    band: tuple[float, float]
    interval: tuple[float, float]
    status: Status
    alpha: float

    @property
    def observed(self) -> float:
        """The observed share count / n (0.0 before any request)."""
        return self.count / self.n if self.n else 0.0


@dataclass(frozen=True)
class SplitVerdict:
    """The verdict of one split check, with everything a message needs to explain it."""

    outcome: Outcome
    n: int
    buckets: tuple[BucketVerdict, ...]
    method: str
    design: Design

    @property
    def passed(self) -> bool:
        """True for "pass" and "inconclusive": undecided at the cap is a warning, not a fail."""
        return self.outcome in ("pass", "inconclusive")


# --------------------------------------------------------------------------------------------
# Shares, bands and the per-bucket plan


def normalise_shares(expected: Mapping[str, float]) -> dict[str, float]:
    """Turn weights (``{"v1": 90, "v2": 10}``) or shares into shares summing to 1, order kept.

    Raises ValueError for an empty mapping, a negative or non-finite weight, or all-zero weights:
    those describe no split that traffic could match.
    """
    if not expected:
        raise ValueError("expected shares are empty: name at least one destination")
    for name, weight in expected.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise ValueError(f"weight of {name!r} must be a number, got {weight!r}")
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight of {name!r} must be finite and >= 0, got {weight}")
    total = math.fsum(float(w) for w in expected.values())
    if total <= 0:
        raise ValueError("all expected weights are zero: no destination receives traffic")
    return {name: float(w) / total for name, w in expected.items()}


def share_band(share: float, delta: float) -> tuple[float, float]:
    """The shares that count as "as configured": ``(p - min(delta, p/2), p + delta)``.

    The lower margin is at most half the share: with a plain ``p - delta`` a 10% canary would
    have the band (0%, 20%) and a canary that gets 1% of the traffic would pass. 0% and 100% are
    exact (any contrary request fails), so their band is the single point.
    """
    if share <= 0.0 or share >= 1.0:
        return (share, share)
    return (share - min(delta, share / 2.0), min(1.0, share + delta))


def _prior(share: float, delta: float) -> tuple[float, float]:
    """Beta(a, b) mixing prior with mean ``share`` and standard deviation ``delta``.

    Spreading the prior over the shifts we must detect makes the mixture grow fastest against
    them. When ``delta`` exceeds what a Beta of that mean allows, ``a + b`` is clipped at 1.
    """
    if share <= 0.0 or share >= 1.0:
        return (0.5, 0.5)  # Jeffreys: only used for the informational interval
    size = max(share * (1.0 - share) / delta**2 - 1.0, 1.0)
    return (share * size, (1.0 - share) * size)


@dataclass(frozen=True)
class _BucketPlan:
    """How one bucket of a split is judged: tested against its band (with its alpha and
    mixture prior), mirrored from the bucket tested, or held to exactly 0% or 100%."""

    name: str
    share: float
    role: _Role  # tested | mirror (complement of the one tested) | zero | one (100%)
    band: tuple[float, float]
    alpha: float  # per-bucket alpha (Bonferroni) for tested buckets; design alpha otherwise
    prior: tuple[float, float]


def _plan(shares: Mapping[str, float], design: Design) -> tuple[_BucketPlan, ...]:
    """Decide which buckets carry a statistical test and at which alpha.

    Shares strictly between 0 and 1 are tested with alpha / m (Bonferroni). With exactly two
    such shares they are complements, so only the smaller one is tested, with the full alpha.
    """
    inner = [name for name, p in shares.items() if 0.0 < p < 1.0]
    mirror: str | None = None
    if len(inner) == 2:
        first, second = inner
        tested_name, mirror = (second, first) if shares[second] < shares[first] else inner
        inner = [tested_name]
    alpha_b = design.alpha / len(inner) if inner else design.alpha
    plans = []
    for name, p in shares.items():
        role: _Role
        if name in inner:
            role, band = "tested", share_band(p, design.delta)
        elif name == mirror:
            lo, hi = share_band(1.0 - p, design.delta)
            role, band = "mirror", (1.0 - hi, 1.0 - lo)
        elif p == 0.0:
            role, band = "zero", (0.0, 0.0)
        else:
            role, band = "one", (1.0, 1.0)
        plans.append(_BucketPlan(name, p, role, band, alpha_b, _prior(p, design.delta)))
    return tuple(plans)


def _extra_plan(name: str, design: Design) -> _BucketPlan:
    """An observed bucket nobody configured (``HTTP 503``, a stray version): share 0."""
    return _BucketPlan(name, 0.0, "zero", (0.0, 0.0), design.alpha, _prior(0.0, design.delta))


def _check_counts(counts: Mapping[str, int]) -> int:
    for name, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int):
            raise ValueError(f"count of {name!r} must be an integer, got {count!r}")
        if count < 0:
            raise ValueError(f"count of {name!r} must be >= 0, got {count}")
    return sum(counts.values())
