"""The few special functions the split statistics need, in pure Python: log-beta, the
regularized incomplete beta and its inverse, binomial tails, and Brent's root finder.

Why not scipy (used before): importing scipy.special and scipy.optimize took ~0.3 s of every
`meshlab run` for ~10 ms of arithmetic. These follow the same algorithms (Cephes' `incbet`
via the continued fraction, scipy's own `brentq`) and are tested against scipy to ~1e-12
relative (tests/unit/test_special.py; scipy stays a test dependency).
"""

from __future__ import annotations

import math
from collections.abc import Callable

_EPS = 2.220446049250313e-16
_TINY = 1e-300
_MAX_TERMS = 100_000  # the fraction needs O(sqrt(max(a, b))) terms; this is a bound only


_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_STIRLING = 10.0  # from here on lgamma's Stirling series is summed (its terms below 1e-16)


def _lgamma_correction(z: float) -> float:
    """lgamma(z) - ((z - 0.5) log z - z + log sqrt(2 pi)), without cancellation for z >= 10."""
    if z < _STIRLING:
        return math.lgamma(z) - ((z - 0.5) * math.log(z) - z + _LOG_SQRT_2PI)
    w = 1.0 / (z * z)
    series = 1 / 12 - w * (
        1 / 360 - w * (1 / 1260 - w * (1 / 1680 - w * (1 / 1188 - w * (691 / 360360 - w / 156))))
    )
    return series / z


def betaln(a: float, b: float) -> float:
    """log B(a, b) for a, b > 0; for large arguments as R's `lbeta` sums it, so that the
    three lgamma terms (each ~1e5 at N = 20,000) do not cancel away the last digits."""
    p, q = min(a, b), max(a, b)
    if p >= _STIRLING:
        corr = _lgamma_correction(p) + _lgamma_correction(q) - _lgamma_correction(p + q)
        share = p / (p + q)
        return (
            -0.5 * math.log(q)
            + _LOG_SQRT_2PI
            + corr
            + (p - 0.5) * math.log(share)
            + q * math.log1p(-share)
        )
    if q >= _STIRLING:
        corr = _lgamma_correction(q) - _lgamma_correction(p + q)
        return (
            math.lgamma(p) + corr + p - p * math.log(p + q) + (q - 0.5) * math.log1p(-p / (p + q))
        )
    return math.lgamma(p) + math.lgamma(q) - math.lgamma(p + q)


def _log_front(a: float, b: float, x: float) -> float:
    """log(x^a (1-x)^b / B(a, b)), the factor in front of the continued fraction. With a and
    b both large, written around the mean a/(a+b) (as TOMS 708's `brcomp` does), where the
    terms a log x and b log(1-x) would otherwise cancel."""
    if min(a, b) < _STIRLING:
        return a * math.log(x) + b * math.log1p(-x) - betaln(a, b)
    total = a + b
    u = x * total - a  # how far x is from the mean, times a + b

    def rlog1(t: float) -> float:
        return t - math.log1p(t)

    corr = _lgamma_correction(total) - _lgamma_correction(a) - _lgamma_correction(b)
    spread = 0.5 * math.log(a * b / total) - _LOG_SQRT_2PI
    return -a * rlog1(u / a) - b * rlog1(-u / b) + spread + corr


def _continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (modified Lentz), good for x < (a+1)/(a+b+2)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_TERMS):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        step = d * c
        h *= step
        if abs(step - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta did not converge (a={a}, b={b}, x={x})")


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1.

    The fraction is evaluated on the side of the mean where it converges fast, so a small
    result keeps its relative accuracy (a result near 1 is 1 minus a small one)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = _log_front(a, b, x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _continued_fraction(b, a, 1.0 - x) / b


def betaincinv(a: float, b: float, y: float) -> float:
    """The x in [0, 1] with I_x(a, b) = y."""
    if y <= 0.0:
        return 0.0
    if y >= 1.0:
        return 1.0
    return brentq(lambda x: betainc(a, b, x) - y, 0.0, 1.0, xtol=_TINY, rtol=4 * _EPS)


def bdtr(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return betainc(n - k, k + 1, 1.0 - p)


def bdtrc(k: int, n: int, p: float) -> float:
    """P(X > k) for X ~ Binomial(n, p), computed directly (not as 1 - bdtr: small tails keep
    their relative accuracy)."""
    if k < 0:
        return 1.0
    if k >= n:
        return 0.0
    return betainc(k + 1, n - k, p)


def brentq(  # noqa: PLR0912 (scipy's algorithm, branch for branch)
    f: Callable[[float], float],
    lo: float,
    hi: float,
    xtol: float = 2e-12,
    rtol: float = 4 * _EPS,
    maxiter: int = 200,
) -> float:
    """A root of f in [lo, hi] (f(lo) and f(hi) of opposite signs): Brent's method, step for
    step as scipy.optimize.brentq does it (scipy/optimize/Zeros/brentq.c)."""
    xpre, xcur = lo, hi
    fpre, fcur = f(xpre), f(xcur)
    if fpre * fcur > 0:
        raise ValueError("f(lo) and f(hi) must have different signs")
    if fpre == 0:
        return xpre
    if fcur == 0:
        return xcur
    xblk = fblk = spre = scur = 0.0
    for _ in range(maxiter):
        if fpre != 0 and fcur != 0 and (fpre < 0) != (fcur < 0):
            xblk, fblk = xpre, fpre
            spre = scur = xcur - xpre
        if abs(fblk) < abs(fcur):
            xpre, xcur, xblk = xcur, xblk, xcur
            fpre, fcur, fblk = fcur, fblk, fcur
        delta = (xtol + rtol * abs(xcur)) / 2
        sbis = (xblk - xcur) / 2
        if fcur == 0 or abs(sbis) < delta:
            return xcur
        if abs(spre) > delta and abs(fcur) < abs(fpre):
            if xpre == xblk:  # interpolate
                stry = -fcur * (xcur - xpre) / (fcur - fpre)
            else:  # extrapolate
                dpre = (fpre - fcur) / (xpre - xcur)
                dblk = (fblk - fcur) / (xblk - xcur)
                stry = -fcur * (fblk * dblk - fpre * dpre) / (dblk * dpre * (fblk - fpre))
            if 2 * abs(stry) < min(abs(spre), 3 * abs(sbis) - delta):
                spre, scur = scur, stry  # good short step
            else:
                spre = scur = sbis  # bisect
        else:
            spre = scur = sbis  # bisect
        xpre, fpre = xcur, fcur
        xcur += scur if abs(scur) > delta else (delta if sbis > 0 else -delta)
        fcur = f(xcur)
    raise ArithmeticError(f"brentq did not converge in {maxiter} iterations")
