"""The pure-Python special functions (checks/stats/special.py) against scipy's, over the
ranges the split statistics use: shares 0.001-0.999, N up to 20,000, tails down to 1e-12.

Agreement is asked to 1e-10 relative: at N = 20,000 near the mean scipy itself is off by
~1e-11 (exact rational sums say so: 0.55909259164167818 is P(X <= 20) for Binomial(20000,
0.001); ours 0.5590925916416721, scipy's 0.5590925916355363), and exact sums hold ours to
1e-13 below."""

from __future__ import annotations

import math
from fractions import Fraction
from math import comb

import pytest
import scipy.optimize  # type: ignore[import-untyped]
import scipy.special  # type: ignore[import-untyped]

from meshlab.checks.stats import special
from meshlab.checks.stats.design import Design
from meshlab.checks.stats.fixed import _clopper_pearson as clopper_pearson
from meshlab.checks.stats.fixed import fixed_sample_size

NS = [1, 2, 7, 50, 399, 1759, 5000, 20000]
PS = [0.001, 0.01, 0.05, 0.1, 0.3333, 0.5, 0.9, 0.999]


def close(ours: float, theirs: float, rel: float = 1e-10) -> bool:
    """Relative agreement, or absolute below 1e-300 (both underflow)."""
    return math.isclose(ours, theirs, rel_tol=rel, abs_tol=1e-300)


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("p", PS)
def test_binomial_tails_match_scipy(n: int, p: float) -> None:
    ks = sorted({0, 1, n // 3, int(n * p), int(n * p) + 1, n - 2, n - 1, n} - {-1})
    for k in [k for k in ks if 0 <= k <= n]:
        lower, upper = float(scipy.special.bdtr(k, n, p)), float(scipy.special.bdtrc(k, n, p))
        assert close(special.bdtr(k, n, p), lower), (k, n, p)
        # the upper tail is computed directly: even its tiny values agree relatively
        if upper > 1e-290:
            assert close(special.bdtrc(k, n, p), upper), (k, n, p)


@pytest.mark.parametrize("a", [0.5, 1.0, 3.0, 100.0, 2500.5])
@pytest.mark.parametrize("b", [0.5, 2.0, 90.0, 7000.0])
def test_betaln_and_betainc_match_scipy(a: float, b: float) -> None:
    assert math.isclose(
        special.betaln(a, b), scipy.special.betaln(a, b), rel_tol=1e-13, abs_tol=1e-9
    )
    for x in [1e-9, 0.001, 0.1, a / (a + b), 0.5, 0.9, 0.999999]:
        assert close(special.betainc(a, b, x), float(scipy.special.betainc(a, b, x)), 1e-10)


@pytest.mark.parametrize("y", [1e-12, 2.5e-7, 0.025, 0.5, 0.975, 1 - 2.5e-7])
@pytest.mark.parametrize(("a", "b"), [(1, 10), (5, 995), (88, 692), (700, 81), (1, 1)])
def test_betaincinv_matches_scipy(a: float, b: float, y: float) -> None:
    assert close(special.betaincinv(a, b, y), float(scipy.special.betaincinv(a, b, y)), 1e-9)


def test_clopper_pearson_and_fixed_n_are_unchanged() -> None:
    """The decisions built on these functions: exact N and intervals as scipy gave them."""
    for s, n in [(0, 10), (1, 10), (69, 780), (780, 780), (4990, 10000)]:
        lo, hi = clopper_pearson(s, n, 1e-6)
        want_lo = 0.0 if s == 0 else scipy.special.betaincinv(s, n - s + 1, 5e-7)
        want_hi = 1.0 if s == n else scipy.special.betaincinv(s + 1, n - s, 1 - 5e-7)
        assert close(lo, want_lo, 1e-9)
        assert close(hi, want_hi, 1e-9)
    assert fixed_sample_size({"safe": 0.9, "risky": 0.1}, Design()) == 1759  # its docstring


@pytest.mark.parametrize("shift", [0.0, 1e-9, 0.3, 0.77])
def test_brentq_follows_scipy_step_for_step(shift: float) -> None:
    calls: list[list[float]] = [[], []]

    def f(i: int) -> object:
        def g(x: float) -> float:
            calls[i].append(x)
            return math.expm1(5 * (x - shift)) - 0.1 * x

        return g

    ours = special.brentq(f(0), -1.0, 2.0, xtol=1e-13, rtol=1e-12)
    theirs = scipy.optimize.brentq(f(1), -1.0, 2.0, xtol=1e-13, rtol=1e-12)
    assert ours == theirs
    assert calls[0] == calls[1]


def test_brentq_refuses_a_bracket_without_a_sign_change() -> None:
    with pytest.raises(ValueError, match="different signs"):
        special.brentq(lambda x: x * x + 1, -1.0, 1.0)


@pytest.mark.parametrize(
    ("k", "n", "p"), [(3, 40, 0.1), (69, 780, 0.1), (5, 300, 0.001), (150, 300, 0.5)]
)
def test_binomial_tails_match_exact_rational_sums(k: int, n: int, p: float) -> None:
    share = Fraction(p)
    exact = sum(comb(n, i) * share**i * (1 - share) ** (n - i) for i in range(k + 1))
    assert math.isclose(special.bdtr(k, n, p), float(exact), rel_tol=1e-13)
    assert math.isclose(special.bdtrc(k, n, p), float(1 - exact), rel_tol=1e-13)
