"""bench/run.py's CPU budget of a run: medians per process, their total, and the wall no
schedule beats (the total over the cores, or the run's own CPU when that is more)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # run.py imports its siblings
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(main: float, envoy: float, hosts: float, others: float) -> dict[str, float]:
    return {"cpu_main": main, "cpu_envoy": envoy, "cpu_hosts": hosts, "cpu_others": others}


def test_the_floor_is_the_total_over_the_cores(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 2)
    runs = [_run(0.6, 0.5, 0.2, 0.2), _run(0.7, 0.4, 0.2, 0.1), _run(0.5, 0.4, 0.1, 0.2)]
    budget = bench._cpu_budget(runs)
    assert budget["main"] == pytest.approx(0.6)
    assert budget["envoy"] == pytest.approx(0.4)
    assert budget["total"] == pytest.approx(1.4)  # the median run's total, not a sum of medians
    assert budget["floor"] == pytest.approx(0.7)


def test_the_floor_is_the_run_s_own_cpu_when_that_is_more(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 8)
    budget = bench._cpu_budget([_run(0.7, 0.4, 0.2, 0.2)])
    assert budget["floor"] == pytest.approx(0.7)  # one process runs on one core at a time
    assert budget["cores"] == 8
