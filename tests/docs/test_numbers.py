"""Numbers the docs state are the code's: the sequential test's caps at the splits the pages
name, computed here by the same function the check uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshlab.checks.stats import sequential_cap

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize(
    ("page", "phrase", "shares"),
    [
        ("labs/2-traffic.md", "{n} requests for this 90/10 split", (0.9, 0.1)),
        ("statistics.md", "{n} at 90/10", (0.9, 0.1)),
        ("statistics.md", "{n} at 95/5", (0.95, 0.05)),
        ("statistics.md", "{n} at 50/50", (0.5, 0.5)),
    ],
)
def test_the_cap_a_page_states_is_the_one_the_check_uses(
    page: str, phrase: str, shares: tuple[float, float]
) -> None:
    cap = sequential_cap({"a": shares[0], "b": shares[1]})
    text = " ".join((DOCS / page).read_text(encoding="utf-8").split())
    assert phrase.format(n=cap) in text, f"{page} should say {phrase.format(n=cap)!r}"
