"""Running a lab a test wrote, as the integration tests of configured expectations do: a
shorter design with the same margins (α 1e-4, β 1e-2, δ 20 points), results by check name."""

from __future__ import annotations

from pathlib import Path

from meshlab.backends.base import Backend
from meshlab.checks import CheckResult
from meshlab.checks.stats import Design
from meshlab.pipeline import RunOptions, run_lab

SHORT_DESIGN = Design(alpha=1e-4, beta=1e-2, delta=0.2)


def check_results(lab: Path, backend: Backend) -> dict[str, CheckResult]:
    """`lab`'s checks on `backend` under SHORT_DESIGN, by name."""
    report = run_lab(lab, RunOptions(design=SHORT_DESIGN), backend=backend)
    return {r.name: r for r in report.results}
