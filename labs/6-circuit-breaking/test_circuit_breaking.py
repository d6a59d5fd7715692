"""Lab 6's own Python test: the circuit breaker broken the ways a student breaks it, each
failing with a message that names the cause. Each variant is the lab's folder copied with
one edit to circuit-breaker.yaml, run whole on the session's backend."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from meshlab.backends.base import Backend
from meshlab.errors import InputError
from meshlab.pipeline import run_lab

HERE = Path(__file__).resolve().parent
RULE = "circuit-breaker.yaml"


def variant(tmp_path: Path, old: str, new: str) -> Path:
    """This lab with `old` replaced by `new` in its DestinationRule."""
    folder = tmp_path / "lab"
    folder.mkdir()
    for name in ("lab.yaml", "fleetman.yaml", RULE):
        shutil.copy(HERE / name, folder / name)
    text = (folder / RULE).read_text(encoding="utf-8")
    assert old in text
    (folder / RULE).write_text(text.replace(old, new), encoding="utf-8")
    return folder


def only_message(folder: Path, backend: Backend) -> str:
    report = run_lab(folder, backend=backend)
    (result,) = report.results
    assert result.outcome == "fail", result.message
    return result.message


def test_the_pod_answering_500_is_the_6_bad_build(mesh_backend: Backend) -> None:
    report = run_lab(HERE, backend=mesh_backend)
    (result,) = report.results
    assert result.passed, result.message
    assert "version=risky" in result.message


def test_without_outlier_detection_the_bad_pod_keeps_its_traffic(
    tmp_path: Path, mesh_backend: Backend
) -> None:
    text = (HERE / RULE).read_text(encoding="utf-8")
    block = text[text.index("    outlierDetection:") :]  # the rest of the file
    folder = variant(tmp_path, block, "    loadBalancer: {simple: LEAST_REQUEST}\n")
    message = only_message(folder, mesh_backend)
    assert "never ejected" in message
    assert "sets no trafficPolicy.outlierDetection" in message


def test_a_rule_for_the_wrong_host_ejects_nothing(tmp_path: Path, mesh_backend: Backend) -> None:
    folder = variant(tmp_path, "host: fleetman-staff-service.", "host: fleetman-staff.")
    message = only_message(folder, mesh_backend)
    assert "no DestinationRule applies to fleetman-staff-service.default.svc.cluster.local" in (
        message
    )


def test_a_misspelt_field_is_refused_at_its_line(tmp_path: Path) -> None:
    folder = variant(tmp_path, "consecutive5xxErrors", "consecutive5xxError")
    with pytest.raises(InputError) as error:
        run_lab(folder)
    assert "consecutive5xxError" in str(error.value)
    assert RULE in str(error.value.location)
