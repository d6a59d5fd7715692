"""Budgets through `meshlab run`: over budget before start is exit 2 with the message and no
traceback; a check out of time on a real Envoy ends inconclusive quickly, never hangs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshlab.load.budgets import Budgets
from meshlab.pipeline import RunOptions, run_lab

REPO = Path(__file__).resolve().parents[2]
TRAFFIC_LAB = REPO / "labs" / "2-traffic"
MESHLAB = [sys.executable, "-c", "from meshlab.cli import main; main()"]


def lab_copy(tmp_path: Path, edits: list[tuple[str, str, str]]) -> Path:
    lab = tmp_path / "lab"
    shutil.copytree(TRAFFIC_LAB, lab)
    for name, old, new in edits:
        text = (lab / name).read_text()
        assert old in text
        (lab / name).write_text(text.replace(old, new, 1))
    return lab


CASES = {
    "pods": (
        [("fleetman.yaml", "replicas: 1", "replicas: 5000")],
        [],
        "5006 pods requested (by 7 objects, the most Deployment default/",
        "the limit is 64 (--max-pods)",
    ),
    "services": ([], ["--max-services", "3"], "5 Services", "the limit is 3 (--max-services)"),
    "split": (
        [
            ("lab.yaml", "expect: {safe: 90, risky: 10}", "expect: configured"),
            ("istio-rules.yaml", "weight: 90", "weight: 9999"),
            ("istio-rules.yaml", "weight: 10", "weight: 1"),
        ],
        [],
        "its split cannot be judged within the budget",
        "the limit is 40000 (--max-check-requests)",
    ),
    "requests": (
        [("lab.yaml", "requests: auto", "requests: 100000000")],
        [],
        "asks for 100000000 requests",
        "the limit is 40000 (--max-check-requests)",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_over_budget_exits_2_before_start(tmp_path: Path, case: str) -> None:
    edits, flags, found, limit = CASES[case]
    lab = lab_copy(tmp_path, edits)
    done = subprocess.run(
        [*MESHLAB, "run", str(lab), *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr, done.stderr
    assert found in done.stderr, done.stderr
    assert limit in done.stderr, done.stderr
    assert "over budget: nothing was started" in done.stderr


@pytest.mark.envoy
def test_a_check_out_of_time_ends_inconclusive_quickly(tmp_path: Path) -> None:
    """Every request delayed 0.5 s by a fault: with 2 s per check the check stops after a
    few requests (at most one request late), not after hundreds of delayed ones."""
    lab = lab_copy(
        tmp_path,
        [
            (
                "istio-rules.yaml",
                "  http:\n  - route:",
                "  http:\n  - fault:\n      delay:\n        fixedDelay: 0.5s\n"
                "        percentage: {value: 100}\n    route:",
            )
        ],
    )
    started = time.monotonic()
    report = run_lab(lab, RunOptions(budgets=Budgets(check_seconds=2)))
    elapsed = time.monotonic() - started
    (result,) = report.results
    assert result.outcome == "inconclusive", result.message
    assert not result.passed
    assert result.message.startswith("canary-split inconclusive: budget (time: "), result.message
    assert "the limit is 2 s" in result.message
    assert 1 <= result.requests <= 6
    assert result.seconds < 4  # 2 s and at most one 0.5 s request over
    assert elapsed < 30, elapsed  # never the 330 x 0.5 s the test would otherwise take
