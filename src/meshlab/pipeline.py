"""One lab run, start to end: load -> plan (Istio semantics) -> backend -> checks -> report.

The CLI and the pytest plugin both call these functions; neither has its own pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from meshlab.analysis import Diagnostic, analyze
from meshlab.backends.base import Backend, Deployed, LabToDeploy
from meshlab.backends.registry import EmbeddedOptions, get_backend
from meshlab.checks import Check, CheckContext, CheckResult, load_checked_lab, registry
from meshlab.checks.stats import Design
from meshlab.errors import reading_input
from meshlab.load.lab import Lab
from meshlab.load.manifests import Resource, load_manifests
from meshlab.mesh.plan import MeshPlan, Note, build_plan
from meshlab.report.model import RunReport, run_report

ProgressFactory = Callable[[Check], Callable[[int, int], None]]


@dataclass
class RunOptions:
    backend: str = "embedded"
    requests: int | None = None  # fixed N for every split check (None: the sequential design)
    envoy: Path | None = None  # the embedded backend's Envoy (None: its usual search)
    design: Design = field(default_factory=Design)


@dataclass(frozen=True)
class PreparedLab:
    """A lab whose files parsed and validated: ready for any backend."""

    lab: Lab
    checks: tuple[Check, ...]
    resources: list[Resource]
    plan: MeshPlan
    diagnostics: list[Diagnostic] = field(default_factory=list)  # `meshlab analyze`'s findings

    def to_deploy(self) -> LabToDeploy:
        """What a backend deploys: this plan, as built here (backends never re-plan)."""
        return LabToDeploy(self.lab.name, self.lab.namespace, tuple(self.resources), self.plan)

    def context(
        self, mesh: Deployed, *, design: Design | None = None, requests: int | None = None
    ) -> CheckContext:
        """What a check of this lab reads, on a mesh where the lab is deployed."""
        return CheckContext(
            resources=self.resources,
            plan=self.plan,
            mesh=mesh,
            design=design or Design(),
            requests_override=requests,
            diagnostics=self.diagnostics,
        )


@reading_input("the lab")
def prepare(path: Path) -> PreparedLab:
    """Load lab.yaml and its manifests; InputError (exit 2) on anything invalid. Then the
    static analysis: its diagnostics never stop a run, they explain it."""
    checked = load_checked_lab(path)
    lab = checked.lab
    resources = load_manifests(list(lab.manifests), lab.namespace)
    plan = build_plan(resources, lab.namespace)
    return PreparedLab(lab, checked.checks, resources, plan, analyze(resources, lab.namespace))


@dataclass
class LabReport:
    lab: Lab
    backend: dict[str, str]
    results: list[CheckResult]
    notes: list[Note]
    seconds: float
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def model(self) -> RunReport:
        """The report as the typed model that every output (text, JSON, JUnit) renders."""
        return run_report(
            self.lab, self.backend, self.results, self.notes, self.seconds, self.diagnostics
        )


def run_check(check: Check, context: CheckContext) -> CheckResult:
    started = time.perf_counter()
    result = registry()[check.kind].run(check, context)
    result.seconds = time.perf_counter() - started
    return result


def run_lab(
    path: Path,
    options: RunOptions | None = None,
    progress: ProgressFactory | None = None,
    backend: Backend | None = None,
) -> LabReport:
    options = options or RunOptions()
    prepared = prepare(path)
    if backend is None:
        embedded = EmbeddedOptions(options.envoy) if options.backend == "embedded" else None
        backend = get_backend(options.backend, embedded)
    info = dict(backend.describe())
    started = time.perf_counter()
    results = []
    lab = prepared.to_deploy()
    notes = list(backend.notes(lab))
    with backend.deploy(lab) as mesh:
        for check in prepared.checks:
            context = prepared.context(mesh, design=options.design, requests=options.requests)
            if progress is not None:
                context.progress = progress(check)
            results.append(run_check(check, context))
    seconds = time.perf_counter() - started
    return LabReport(prepared.lab, info, results, notes, seconds, prepared.diagnostics)
