"""One lab run, start to end: load -> plan (Istio semantics) -> backend -> checks -> report.

The CLI and the pytest plugin both call these functions; neither has its own pipeline.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import field, replace
from pathlib import Path

from meshlab.analysis import Diagnostic, analyze
from meshlab.backends.base import Backend, Deployed, LabToDeploy
from meshlab.backends.registry import EmbeddedOptions, get_backend
from meshlab.checks import Check, CheckContext, CheckResult, load_checked_lab, registry
from meshlab.checks.base import Progress
from meshlab.checks.budget import refuse_checks
from meshlab.checks.ledger import RunLedger, load_memory_reader
from meshlab.checks.request import RequestedSpec
from meshlab.checks.stats import Design
from meshlab.errors import reading_input
from meshlab.load.budgets import Budgets, refuse_files, refuse_objects
from meshlab.load.lab import Lab, find_lab_file
from meshlab.load.manifests import Resource, load_manifests
from meshlab.mesh.plan import MeshPlan, Note, build_plan
from meshlab.mesh.request import ProbeRequest
from meshlab.mesh.unsimulated import unsimulated_notes
from meshlab.records import dataclass
from meshlab.report.model import RunReport, run_report
from meshlab.report.traffic import TracedMesh

ProgressFactory = Callable[[Check], Progress]  # a progress display per check


@dataclass
class RunOptions:
    """How to run a lab (`run_lab`, `meshlab run`, `meshlab grade`): the backend, a fixed
    request count or the sequential design, the Envoy binary, the budgets."""

    backend: str = "embedded"
    requests: int | None = None  # fixed N for every split check (None: the sequential design)
    envoy: Path | None = None  # the embedded backend's Envoy (None: its usual search)
    design: Design = field(default_factory=Design)
    budgets: Budgets = field(default_factory=Budgets)


@dataclass(frozen=True)
class PreparedLab:
    """A lab whose files parsed and validated: ready for any backend."""

    lab: Lab
    checks: tuple[Check, ...]
    resources: list[Resource]
    plan: MeshPlan
    diagnostics: list[Diagnostic] = field(default_factory=list)  # `meshlab analyze`'s findings
    ledger: RunLedger = field(default_factory=RunLedger)  # the run's budgets, as spent
    unsimulated: list[Note] = field(default_factory=list)  # kinds listed, not run

    def to_deploy(self, *, checks_only: bool = False) -> LabToDeploy:
        """What a backend deploys: this plan, as built here (backends never re-plan).
        `checks_only`: nothing but this lab's checks sends requests (`meshlab run`, grading),
        so their requests bound the sidecars a backend has to run (LabToDeploy.requests)."""
        requests = _requests(self.checks) if checks_only else None
        lab = self.lab
        return LabToDeploy(lab.name, lab.namespace, tuple(self.resources), self.plan, requests)

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
            budget=self.ledger.for_check(),
        )


@reading_input("the lab")
def prepare(
    path: Path,
    budgets: Budgets | None = None,
    design: Design | None = None,
    requests: int | None = None,
) -> PreparedLab:
    """Load lab.yaml and its manifests; InputError (exit 2) on anything invalid or over
    budget, each budget checked as soon as the input shows it: file sizes before reading,
    objects and replicas before any pod is built, checks once the plan says what they
    need. Then the static analysis: its diagnostics never stop a run, they explain it."""
    budgets = budgets or Budgets()
    ledger = RunLedger(budgets)  # the run's clock starts with loading
    refuse_files([find_lab_file(path)], budgets)
    checked = load_checked_lab(path)
    lab = checked.lab
    refuse_files([lab.file, *lab.manifests], budgets)
    everything = load_manifests(list(lab.manifests), lab.namespace)
    resources = [r for r in everything if r.simulated]  # not Istio's install, not CRDs...
    if len(everything) > budgets.objects:  # every object counts, run or not
        refuse_objects(everything, budgets)  # (the objects budget is checked first)
    refuse_objects(resources, budgets)  # Services and pods: those the backend runs
    plan = build_plan(resources, lab.namespace)
    refuse_checks(checked.checks, plan, budgets, design, requests, resources)
    diagnostics = analyze(everything, lab.namespace)
    unsimulated = unsimulated_notes(everything)
    return PreparedLab(lab, checked.checks, resources, plan, diagnostics, ledger, unsimulated)


@dataclass
class LabReport:
    """One lab's run as it ended: its check results, the notes on what was not simulated, the
    analysis findings and how long it took; every output is rendered from its `model()`."""

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
    """Run one check; the calls behind its requests are tallied on the way (a check cannot
    import the report stage) and stored as its `traffic`, the graph of the whole chain."""
    started = time.perf_counter()
    traced = TracedMesh(context.mesh)
    result = registry()[check.kind].run(check, replace(context, mesh=traced))
    result.seconds = time.perf_counter() - started
    graph = traced.graph()
    if graph is not None:
        result.details.setdefault("traffic", graph.model_dump(mode="json"))
    return result


def run_lab(
    path: Path,
    options: RunOptions | None = None,
    progress: ProgressFactory | None = None,
    backend: Backend | None = None,
) -> LabReport:
    """The whole run: prepare the lab, then run it."""
    options = options or RunOptions()
    prepared = prepare(path, options.budgets, options.design, options.requests)
    return run_prepared(prepared, options, progress, backend)


def run_prepared(
    prepared: PreparedLab,
    options: RunOptions | None = None,
    progress: ProgressFactory | None = None,
    backend: Backend | None = None,
) -> LabReport:
    """Deploy a prepared lab on the backend and run its checks (a caller that wants to say
    something about the lab before traffic flows prepares it first)."""
    options = options or RunOptions()
    if backend is None:
        backend = backend_for(options)
    info = dict(backend.describe())
    started = time.perf_counter()
    results = []
    lab = prepared.to_deploy(checks_only=True)
    notes = [*prepared.unsimulated, *backend.notes(lab)]
    _while_deploying(load_memory_reader)
    with backend.deploy(lab) as mesh:
        for check in prepared.checks:
            context = prepared.context(mesh, design=options.design, requests=options.requests)
            if progress is not None:
                context.progress = progress(check)
            results.append(run_check(check, context))
    seconds = time.perf_counter() - started
    return LabReport(prepared.lab, info, results, notes, seconds, prepared.diagnostics)


def _requests(checks: Sequence[Check]) -> tuple[ProbeRequest, ...] | None:
    """The checks' requests (`request:`: where each starts, to which host and port); None
    when a check's kind has no request to say it (then every sidecar is run)."""
    found: list[ProbeRequest] = []
    for check in checks:
        if not isinstance(check.spec, RequestedSpec):
            return None
        found.append(check.spec.request.probe())
    return tuple(found)


def _while_deploying(work: Callable[[], None]) -> None:
    """Run `work` in a thread: a deployment mostly waits (for Envoy to take the lab's config,
    for the stand-ins and the CA to answer), and work done then is off the run's clock. An
    error there is dropped: whoever needs the work later does it again and meets it."""

    def quietly() -> None:
        with contextlib.suppress(Exception):
            work()

    threading.Thread(target=quietly, name="meshlab-while-deploying", daemon=True).start()


def backend_for(options: RunOptions) -> Backend:
    embedded = EmbeddedOptions(options.envoy) if options.backend == "embedded" else None
    return get_backend(options.backend, embedded)
