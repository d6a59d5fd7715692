"""Numbers and verdicts in words, the same on the results page and in its pictures."""

from __future__ import annotations

import math

STATUS_WORD = {"ok": "as configured", "off": "not as configured", "undecided": "undecided"}


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def pct_short(x: float) -> str:
    """50%, 12.5%, 0.1%: no trailing zeros, for configured weights and band edges."""
    return f"{100 * x:.2f}".rstrip("0").rstrip(".") + "%"


def pct_range(pair: tuple[float, float]) -> str:
    lo, hi = pair
    return f"{100 * lo:.1f}–{100 * hi:.1f}%"


def band_text(band: tuple[float, float]) -> str:
    lo, hi = band
    if lo == hi:
        return f"exactly {pct_short(lo)}"
    return f"{pct_short(lo)}–{pct_short(hi)}"


def level(alpha: float) -> str:
    """`99.9999%` for alpha = 1e-6, as the verdicts on the terminal write it."""
    digits = max(0, math.ceil(-math.log10(alpha)) - 2) if alpha > 0 else 0
    return f"{100 * (1 - alpha):.{digits}f}%"


def share(count: int, n: int) -> str:
    return pct(count / n) if n else "–"
