"""Lab 2 on a real cluster: the only test here that talks to one.

Marked `kind`: skipped, with the reason, where no Docker engine (or --kubeconfig cluster) is
reachable, and skipped unless asked for with `--backend kind`, because it creates a kind
cluster and pulls the fleetman images (minutes). It has never run on the machines this
project is developed on (no Docker, no internet there); .github/workflows/labs-kind.yml runs
the labs on kind wherever GitHub Actions runs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshlab.backends.base import Backend
from meshlab.pipeline import RunOptions, run_lab

pytestmark = pytest.mark.kind


def test_lab_2_on_a_real_cluster(
    request: pytest.FixtureRequest, mesh_backend: Backend, lab2_dir: Path
) -> None:
    if request.config.getoption("backend") != "kind":
        pytest.skip(
            "creates a kind cluster: run `pytest tests/kind/test_kind_e2e.py --backend kind`"
        )
    report = run_lab(lab2_dir, RunOptions(backend="kind"), backend=mesh_backend)
    (result,) = report.results
    assert result.passed, result.message
    pods = {p["name"]: p["labels"] for p in result.details["pods"]}
    assert {labels["version"] for labels in pods.values()} == {"safe", "risky"}
    assert all("pod-template-hash" in labels for labels in pods.values())  # real pods
