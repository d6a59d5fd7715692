"""Time to verdict of the circuit-breaking lab (labs/6-circuit-breaking), against the floor its
own files set. The ejection check cannot judge before it has watched its window of the
ejection (`window`, at most half of `baseEjectionTime`, counted from the ejecting 5xx) plus
the pauses it takes after the 5xx before that one: that is the floor. A check that waited out
the whole ejection would need `baseEjectionTime`, and the pod is back at the first `interval`
sweep after that. The floor is computed from the lab's DestinationRule and check, so editing
the lab moves it."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from meshlab.checks import ejection
from meshlab.checks.origins import client_plan
from meshlab.mesh.model import ClusterPlan
from meshlab.pipeline import PreparedLab, prepare, run_lab

ROOT = Path(__file__).resolve().parent.parent
LAB6 = ROOT / "labs" / "6-circuit-breaking"


def _cluster(prepared: PreparedLab, spec: ejection.EjectionSpec) -> ClusterPlan | None:
    """The client's cluster for the check's request: the Service's port, no subset (the
    lab's VirtualService-free route)."""
    plan = client_plan(spec.request.origin, prepared.resources, prepared.plan)
    url = urlsplit(spec.request.url)
    name, port = (url.hostname or "").split(".")[0], url.port or 80
    for cluster in plan.clusters.values():
        if cluster.service.name == name and cluster.port == port and cluster.subset is None:
            return cluster
    return None


def floor(lab: Path = LAB6) -> dict[str, float]:
    """The seconds the lab's own numbers impose on its ejection check (no request cost)."""
    prepared = prepare(lab)
    [check] = [c for c in prepared.checks if isinstance(c.spec, ejection.EjectionSpec)]
    spec: ejection.EjectionSpec = check.spec
    cluster = _cluster(prepared, spec)
    assert cluster is not None, "no cluster for the check's request"
    assert cluster.outlier is not None, "the lab ejects nothing"
    errors = ejection.expected_errors(spec, cluster) or 0
    window = ejection.window_seconds(spec, cluster)
    outlier = cluster.outlier
    base = outlier.ejection_seconds
    interval = 10.0 if outlier.interval is None else outlier.interval  # Envoy's default
    return {
        "errors": float(errors),
        "window_seconds": window,
        # the pause after the ejecting 5xx itself falls inside the window
        "settle_seconds": max(errors - 1, 0) * ejection.SETTLE_S,
        "floor_seconds": window + max(errors - 1, 0) * ejection.SETTLE_S,
        "base_ejection_seconds": base,
        "interval_seconds": interval,
        # a check that watched the whole ejection: the pod is back by base + one sweep
        "whole_ejection_floor_seconds": base,
        "back_in_by_seconds": base + interval,
    }


def circuit_breaking(runs: int = 3) -> dict[str, float]:
    """Median seconds of `run_lab` in this process and of whole `meshlab run` processes
    (a warm-up first), with the floor; every run must pass."""
    in_process, checks, whole = [], [], []
    entry = [sys.executable, "-c", "from meshlab.cli import main; main()"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for i in range(runs + 1):
        started = time.perf_counter()
        report = run_lab(LAB6)
        total = time.perf_counter() - started
        assert all(r.passed for r in report.results), report.results[0].message
        started = time.perf_counter()
        done = subprocess.run([*entry, "run", str(LAB6)], env=env, capture_output=True, check=False)
        process = time.perf_counter() - started
        assert done.returncode == 0, done.stdout.decode(errors="replace")[-2000:]
        if i:  # the first is the warm-up (page cache, Envoy's binary)
            in_process.append(total)
            whole.append(process)
            checks.append(sum(r.seconds for r in report.results))
    out = floor()
    out.update(
        runs=float(runs),
        run_lab_seconds=statistics.median(in_process),
        check_seconds=statistics.median(checks),
        process_seconds=statistics.median(whole),
    )
    out["check_over_floor"] = out["check_seconds"] / out["floor_seconds"]
    return out


def describe(cb: dict[str, float]) -> str:
    return (
        f"lab 6 time to verdict: run_lab {cb['run_lab_seconds']:.2f} s, `meshlab run` "
        f"{cb['process_seconds']:.2f} s, the check {cb['check_seconds']:.2f} s (median of "
        f"{cb['runs']:.0f}); floor {cb['floor_seconds']:.2f} s (window "
        f"{cb['window_seconds']:g} s + {cb['settle_seconds']:g} s settling before the ejection), "
        f"check/floor x{cb['check_over_floor']:.2f}; watching the whole ejection would take "
        f"{cb['whole_ejection_floor_seconds']:g} s (back in by {cb['back_in_by_seconds']:g} s)"
    )
