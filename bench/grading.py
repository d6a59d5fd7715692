"""Bench: a class of 24 lab-2 submissions of mixed quality graded by `meshlab grade`'s engine
(correct in several shapes, wrong, broken, hostile, one replica bomb), on the embedded backend.

    python bench/grading.py [--jobs N]

Reports the wall time, the peak resident memory of meshlab and every process it started
(psutil, sampled every 50 ms), and the median seconds per submission. The issue's budget:
24 submissions in <= 30 s wall and <= 1 GB peak on a 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from meshlab.backends.embedded.backend import EmbeddedBackend
from meshlab.checks.ledger import tree_rss_mb
from meshlab.grading.grader import default_jobs, grade
from meshlab.pipeline import RunOptions

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "labs" / "2-traffic"
RULES = (LAB / "istio-rules.yaml").read_text()
FQDN = "fleetman-staff-service.default.svc.cluster.local"


def _rules(*edits: tuple[str, str]) -> str:
    text = RULES
    for old, new in edits:
        text = text.replace(old, new)
    return text


SHAPES: dict[str, str] = {
    "correct": RULES,
    "relative": _rules(("weight: 90", "weight: 9"), ("weight: 10", "weight: 1")),
    "fqdn": _rules(("host: fleetman-staff-service", f"host: {FQDN}")),
    "v1": _rules(("networking.istio.io/v1beta1", "networking.istio.io/v1")),
    "even": _rules(("weight: 90", "weight: 50"), ("weight: 10", "weight: 50")),
    "swapped": _rules(("weight: 90", "weight: 10"), ("weight: 10\n", "weight: 90\n")),
    "misspelled": _rules(("  - fleetman-staff-service\n", "  - fleetman-staf-service\n")),
    "no-subset": _rules(("  - name: risky\n    labels:\n      version: risky\n", "")),
    "broken": "kind: [VirtualService\n",
    "empty": "\n",
}
# 24 submissions: 10 correct, 8 wrong, 5 broken, 1 replica bomb
CLASS = (
    ["correct", "relative", "fqdn", "v1"] * 2
    + ["correct", "fqdn"]
    + ["even", "swapped", "misspelled", "no-subset"] * 2
    + ["broken", "empty"] * 2
    + ["broken"]
)


def write_class(root: Path) -> Path:
    submissions = root / "submissions"
    for i, shape in enumerate(CLASS):
        folder = submissions / f"student-{i:02d}-{shape}"
        folder.mkdir(parents=True)
        (folder / "istio-rules.yaml").write_text(SHAPES[shape])
    bomb = submissions / "student-99-replica-bomb"
    bomb.mkdir()
    fleetman = (LAB / "fleetman.yaml").read_text().replace("replicas: 1", "replicas: 5000", 1)
    (bomb / "fleetman.yaml").write_text(fleetman)
    return submissions


class PeakMemory:
    """The largest resident memory of this process and its children seen while running."""

    def __init__(self, every: float = 0.05) -> None:
        self.every = every
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, tree_rss_mb())
            self._stop.wait(self.every)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def grading_bench(jobs: int | None = None) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="meshlab-bench-") as tmp:
        submissions = write_class(Path(tmp))
        started = time.perf_counter()
        with PeakMemory() as memory:
            report = grade(LAB, submissions, RunOptions(), EmbeddedBackend(), jobs=jobs)
        wall = time.perf_counter() - started
    seconds = [s.seconds for s in report.submissions]
    return {
        "submissions": len(report.submissions),
        "jobs": jobs or default_jobs(),
        "wall_seconds": round(wall, 2),
        "peak_memory_mb": round(memory.peak_mb),
        "median_seconds_per_submission": round(statistics.median(seconds), 2),
        "max_seconds_per_submission": round(max(seconds), 2),
        "full_points": sum(1 for s in report.submissions if s.points == s.max_points),
        "could_not_run": sum(1 for s in report.submissions if s.error),
        "points": {s.name: s.points for s in report.submissions},
    }


def describe(result: dict[str, object]) -> str:
    return (
        f"grading {result['submissions']} lab-2 submissions ({result['jobs']} at once): "
        f"{result['wall_seconds']} s wall, peak {result['peak_memory_mb']} MB, median "
        f"{result['median_seconds_per_submission']} s per submission (max "
        f"{result['max_seconds_per_submission']} s); {result['full_points']} full points, "
        f"{result['could_not_run']} could not run"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=None)
    print(describe(grading_bench(parser.parse_args().jobs)))
