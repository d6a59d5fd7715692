"""bench/resilience.py's floor comes from the lab's own files: the check's window, capped at
half the DestinationRule's baseEjectionTime, plus the pauses before the ejecting 5xx."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAB6 = ROOT / "labs" / "6-circuit-breaking"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_resilience", ROOT / "bench" / "resilience.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lab(tmp_path: Path, old: str, new: str) -> Path:
    lab = tmp_path / "6-circuit-breaking"
    shutil.copytree(LAB6, lab, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    rule = lab / "circuit-breaker.yaml"
    text = rule.read_text()
    assert old in text
    rule.write_text(text.replace(old, new))
    return lab


def test_the_floor_of_lab_6_as_written() -> None:
    floor = _bench().floor(LAB6)
    assert floor["window_seconds"] == 2.0  # the check's default window, under 30 s / 2
    assert floor["floor_seconds"] == pytest.approx(2.0 + 0.05)  # one pause before the 2nd 5xx
    assert (floor["base_ejection_seconds"], floor["back_in_by_seconds"]) == (30.0, 40.0)


def test_a_short_ejection_caps_the_window_and_moves_the_floor(tmp_path: Path) -> None:
    lab = _lab(tmp_path, "baseEjectionTime: 30s", "baseEjectionTime: 1s")
    floor = _bench().floor(lab)
    assert floor["window_seconds"] == 0.5
    assert floor["back_in_by_seconds"] == 11.0


def test_more_errors_mean_more_pauses(tmp_path: Path) -> None:
    lab = _lab(tmp_path, "consecutive5xxErrors: 2", "consecutive5xxErrors: 4")
    (lab / "lab.yaml").write_text((lab / "lab.yaml").read_text().replace("errors: 2", "errors: 4"))
    assert _bench().floor(lab)["floor_seconds"] == pytest.approx(2.0 + 3 * 0.05)
