"""The fixed-N search starts near its answer (`_scan_start`) instead of at half the normal
approximation: it must return exactly what the old full scan returned.

Two witnesses: a table of sizes the old scan computed (commit 44e48d4) over the task's splits
and the designs the tests use, and the old scan itself, kept here as the reference, run live
on the small designs (at 99/1 it takes seconds)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meshlab.checks.stats.design import Design
from meshlab.checks.stats.fixed import (
    _fixed_n,
    _normal_n,
    _power_curve,
    _scan_start,
    fixed_sample_size,
)

DESIGNS = [
    Design(),
    Design(alpha=1e-4, beta=1e-2, delta=0.2),  # test_split_check's DESIGN
    Design(alpha=0.01, beta=0.01),  # LOOSE
    Design(alpha=1e-12, beta=0.4),  # the widest gap between the approximation and the answer
]
FIFTY = {"a": 50, "b": 50}
NINETY = {"a": 90, "b": 10}
EIGHTY = {"a": 80, "b": 20}
NINETY_NINE = {"a": 99, "b": 1}
THREE_WAY = {"a": 70, "b": 20, "c": 10}

# (split, design index, fixed_sample_size, with stable=True), as the old scan computed them
OLD_SCAN = [
    (FIFTY, 0, 1573, 1586),
    (FIFTY, 1, 230, 235),
    (FIFTY, 2, 596, 607),
    (FIFTY, 3, 1357, 1371),
    (NINETY, 0, 1759, 1783),
    (NINETY, 1, 1079, 1103),
    (NINETY, 2, 655, 679),
    (NINETY, 3, 1626, 1653),
    (EIGHTY, 0, 1175, 1186),
    (EIGHTY, 1, 493, 505),
    (EIGHTY, 2, 446, 461),
    (EIGHTY, 3, 974, 985),
    (NINETY_NINE, 0, 18842, 19207),
    (NINETY_NINE, 1, 11575, 11818),
    (NINETY_NINE, 2, 6998, 7352),
    (NINETY_NINE, 3, 17602, 17875),
    (THREE_WAY, 0, 1861, 1885),
    (THREE_WAY, 1, 1168, 1192),
    (THREE_WAY, 2, 757, 781),
    (THREE_WAY, 3, 1687, 1728),
]


def _old_fixed_n(
    p: float, alpha: float, beta: float, alternatives: tuple[float, ...], *, stable: bool
) -> int:
    """The scan as it was: from half the normal approximation (or 1), one N at a time."""
    start = max(1, int(_normal_n(p, alpha, beta, alternatives) / 2))
    if next(_power_curve(p, alpha, alternatives, start))[1] >= 1.0 - beta:
        start = 1
    first: int | None = None
    curve: Iterator[tuple[int, float]] = _power_curve(p, alpha, alternatives, start)
    for n, power in curve:
        if power < 1.0 - beta:
            first = None
            continue
        first = n if first is None else first
        if not stable or n >= first + max(50, first // 10):
            return first
    raise AssertionError("unreachable")


@pytest.mark.parametrize(("split", "design", "smallest", "stable"), OLD_SCAN)
def test_fixed_sample_size_is_the_old_scans(
    split: dict[str, int], design: int, smallest: int, stable: int
) -> None:
    assert fixed_sample_size(split, DESIGNS[design]) == smallest
    if smallest < 5000:  # the stable window at 99/1 is 2,000 steps: bounded suite time
        assert fixed_sample_size(split, DESIGNS[design], stable=True) == stable


@pytest.mark.parametrize(
    ("p", "alpha", "beta", "alternatives"),
    [
        (0.5, 1e-4, 1e-2, (0.3, 0.7)),
        (0.1, 0.01, 0.01, (0.05, 0.2)),
        (0.2, 1e-4, 1e-2, (0.1, 0.4)),
        (0.1, 0.05, 0.2, (0.05, 0.2)),
        (0.5, 0.3, 0.3, (0.1, 0.9)),  # a tiny N: the approximation is far off near 1
        (0.7, 1e-12, 0.4, (0.6, 0.8)),
        (0.02, 0.01, 0.01, (0.01, 0.12)),
    ],
)
def test_fixed_n_matches_the_old_scan_live(
    p: float, alpha: float, beta: float, alternatives: tuple[float, ...]
) -> None:
    for stable in (False, True):
        new = _fixed_n.__wrapped__(p, alpha, beta, alternatives, stable=stable)
        assert new == _old_fixed_n(p, alpha, beta, alternatives, stable=stable), stable


def test_scan_start_lies_below_the_answer_and_fails_there() -> None:
    """The start is a failing N below the answer, and much nearer to it than the old half."""
    p, alpha, beta, alternatives = 0.1, 1e-6, 1e-3, (0.05, 0.2)
    start = _scan_start(p, alpha, beta, alternatives)
    answer = _fixed_n(p, alpha, beta, alternatives)
    assert start < answer == 1759
    assert next(_power_curve(p, alpha, alternatives, start))[1] < 1.0 - beta
    assert start > 0.85 * answer  # the old scan started at 916
