"""pytest plugin: every `lab.yaml` is a test file and each of its checks a test item, so
`pytest labs/2-traffic` runs the lab; fixtures let a lab add its own Python tests.

A lab is deployed once (at its first item) and torn down after its last one, or at session
end whatever happened; the engine itself never imports pytest.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from meshlab.backends.base import Backend, Deployed
from meshlab.backends.registry import get_backend, warm_start
from meshlab.checks import Check, CheckContext, CheckResult
from meshlab.errors import BackendUnavailable, InputError, MeshlabError
from meshlab.load.lab import LAB_FILE
from meshlab.mesh.plan import Note
from meshlab.mesh.request import ProbeRequest
from meshlab.options import RUN_OPTIONS, RunOption, RunSettings
from meshlab.pipeline import LabReport, PreparedLab, prepare, run_check
from meshlab.records import dataclass

if TYPE_CHECKING:
    from meshlab.backends.embedded.warm import WarmStart


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """meshlab.options.RUN_OPTIONS, as `meshlab run` has them; a bad value is pytest's usage
    error (exit 4) naming the option, before anything is collected."""
    group = parser.getgroup("meshlab", "meshlab lab checks")
    foreign = _KIND_PLUGIN_OPTIONS if _pytest_kind_declares_options(pluginmanager) else ()
    for option in RUN_OPTIONS:
        if option.flag in foreign:
            continue
        if option.is_flag:
            group.addoption(option.flag, action="store_true", help=option.help)
        elif option.choices:
            group.addoption(
                option.flag, default=option.default, choices=option.choices, help=option.help
            )
        else:
            group.addoption(
                option.flag,
                default=option.default,
                type=_argparse_type(option),
                metavar=option.metavar,
                help=option.help,
            )

    group.addoption(
        REPORTS,
        metavar="DIR",
        type=Path,
        default=None,
        help="write each lab's JSON report (as `meshlab run --json` does) to DIR/lab-NAME.json",
    )
    group.addoption(
        LABS_ONLY,
        action="store_true",
        help="grading: collect only lab.yaml files; never import a conftest.py, test_*.py or "
        "__init__.py (implies --noconftest; pass -c with your own config file too)",
    )


_KIND_PLUGIN_OPTIONS = ("--kubeconfig", "--keep-cluster")
LABS_ONLY = "--meshlab-labs-only"
REPORTS = "--meshlab-reports"


# --- grading mode: nothing of a submission's Python is imported --------------------------
# conftest.py files are imported before collection starts (the initial ones as soon as the
# command line is parsed), test_*.py when their folder is collected, and a package's
# __init__.py when one of its items is set up. Each needs its own stop.


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """--meshlab-labs-only is --noconftest too, set before pytest imports the first one."""
    if vars(early_config.known_args_namespace).get("meshlab_labs_only", False):
        early_config.known_args_namespace.noconftest = True


def _refuse_a_submitted_config(config: pytest.Config) -> None:
    """A pytest.ini (or pyproject.toml...) among the folders to grade came with the
    submission: its addopts and pythonpath are the student's. Say how to avoid it."""
    inipath = config.inipath
    if inipath is None:
        return
    for arg in config.args:
        folder = Path(arg.split("::")[0]).resolve()
        if folder.is_dir() and inipath.resolve().is_relative_to(folder):
            raise pytest.UsageError(
                f"{LABS_ONLY}: pytest read its configuration from {inipath}, inside {arg}, "
                "the folder being graded; pass your own with `-c FILE` (or `-c /dev/null`)"
            )


def _labs_only(config: pytest.Config) -> bool:
    return bool(config.getoption("meshlab_labs_only", default=False))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """In grading mode every file but lab.yaml is left alone (never read, never imported)."""
    if _labs_only(config) and collection_path.name != LAB_FILE and not collection_path.is_dir():
        return True
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """In grading mode a folder with an __init__.py is a plain folder, not a package whose
    __init__.py pytest would import to set it up."""
    if _labs_only(parent.config):
        return pytest.Dir.from_parent(parent, path=path)
    return None


def _argparse_type(option: RunOption) -> Callable[[str], Any]:
    """The option's parser for argparse: its ValueError becomes the parser's usage error."""
    assert option.parse is not None
    parse = option.parse

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = option.dest
    return convert


def _pytest_kind_declares_options(pluginmanager: pytest.PytestPluginManager) -> bool:
    """pytest-kind (in the kind extra) declares --kubeconfig and --keep-cluster with the same
    meaning; declaring them twice would stop pytest, so then its options are the ones read
    (and RunSettings parses their text)."""
    import os
    from importlib.metadata import entry_points

    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") or pluginmanager.is_blocked("pytest-kind"):
        return pluginmanager.has_plugin("pytest_kind.plugin")
    return any(ep.name == "pytest-kind" for ep in entry_points(group="pytest11"))


def pytest_configure(config: pytest.Config) -> None:
    if _labs_only(config):
        config.option.noconftest = True  # as pytest_load_initial_conftests made it
        _refuse_a_submitted_config(config)
    config.addinivalue_line("markers", "meshlab_lab: a check collected from a lab.yaml")
    config.addinivalue_line(
        "markers", "kind: needs a real cluster (skipped, with the reason, when there is none)"
    )
    labs = _Labs(config)
    labs.warm = _warm_start(config, labs)
    config.stash[_LABS] = labs


def _warm_start(config: pytest.Config, labs: _Labs) -> WarmStart | None:
    """For a session of labs only (every path a lab folder or a lab.yaml, as `nox -s lab-*`
    runs): the embedded backend's Envoy, stand-in host and CA started now, while pytest
    collects and reads the lab (backends/embedded/warm.py); the first deployment takes them.
    Never for a session that may deploy nothing here (other tests, an xdist controller)."""
    xdist_controller = config.getoption("numprocesses", default=None) and not os.environ.get(
        "PYTEST_XDIST_WORKER"
    )
    if xdist_controller:
        return None
    paths = [Path(str(a).split("::", 1)[0]) for a in config.args]
    if not paths or not all(
        (p / LAB_FILE).is_file() if p.is_dir() else p.name == LAB_FILE for p in paths
    ):
        return None
    try:
        settings = labs.settings
    except pytest.UsageError:
        return None  # said when the backend is made
    return warm_start(settings.backend, settings.backend_options())


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name == LAB_FILE:
        return LabFile.from_parent(parent, path=file_path)
    return None


def pytest_sessionfinish(session: pytest.Session) -> None:
    session.config.stash[_LABS].close_all()
    session.config.stash[_LABS].close_backend()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Items marked `kind` skip, saying why, when no cluster can be had here."""
    if item.get_closest_marker("kind") is not None:
        refusal = item.config.stash[_LABS].kind_refusal()
        if refusal:
            pytest.skip(refusal)


@dataclass
class _Deployment:
    """One lab deployed for a pytest session: its prepared plan, the running mesh, what tears it
    down, and the results of its checks so far (for --meshlab-reports)."""

    prepared: PreparedLab
    mesh: Deployed
    stack: contextlib.ExitStack
    started: float = field(default_factory=time.perf_counter)
    results: list[CheckResult] = field(default_factory=list)


@dataclass
class _Labs:
    """Deployed labs by folder, plus the backend they share for the session."""

    config: pytest.Config
    deployments: dict[Path, _Deployment] = field(default_factory=dict)
    warm: WarmStart | None = None  # processes started ahead, for the backend to take
    _backend: Backend | None = None
    _kind_refusal: str | None = None

    @property
    def settings(self) -> RunSettings:
        """The run options as given (pytest-kind's --kubeconfig/--keep-cluster included)."""
        values = {o.dest: self.config.getoption(o.dest, default=o.default) for o in RUN_OPTIONS}
        try:
            return RunSettings.from_values(values)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            settings = self.settings
            warm, self.warm = self.warm, None
            self._backend = get_backend(settings.backend, settings.backend_options(), warm)
        return self._backend

    def kind_refusal(self) -> str:
        """Why the kind backend cannot run here ("" if it can); asked once per session."""
        if self._kind_refusal is None:
            if self.config.getoption("backend") == "kind":
                backend = self.backend
            else:
                backend = get_backend("kind", self.settings.kind_options())
            try:
                backend.describe()  # the kind backend's fast preflight
            except BackendUnavailable as exc:
                self._kind_refusal = str(exc)
            else:
                self._kind_refusal = ""
        return self._kind_refusal

    def close_backend(self) -> None:
        """At session end: the kind backend deletes the cluster it created (unless kept)."""
        backend, self._backend = self._backend, None
        warm, self.warm = self.warm, None
        if warm is not None:
            warm.close()  # no lab was deployed
        if backend is not None:
            backend.close()

    def deployment(self, lab_dir: Path) -> _Deployment:
        key = lab_dir.resolve()
        if key not in self.deployments:
            settings = self.settings
            prepared = prepare(key, settings.budgets(), requests=settings.requests)
            stack = contextlib.ExitStack()
            try:
                mesh = stack.enter_context(self.backend.deploy(prepared.to_deploy()))
            except BaseException:
                stack.close()
                raise
            self.deployments[key] = _Deployment(prepared, mesh, stack)
        return self.deployments[key]

    def close(self, lab_dir: Path) -> None:
        deployment = self.deployments.pop(lab_dir.resolve(), None)
        if deployment is not None:
            try:
                deployment.stack.close()
            finally:
                self._write_report(deployment)

    def _write_report(self, deployment: _Deployment) -> None:
        """--meshlab-reports: the lab's checks as `meshlab run --json` reports them, so one
        pytest run (checks and the lab's own tests on one deployment) feeds the docs too."""
        folder = self.config.getoption(REPORTS.removeprefix("--").replace("-", "_"))
        if folder is None or not deployment.results:
            return
        from meshlab.report.text import write_json

        prepared = deployment.prepared
        report = LabReport(
            prepared.lab,
            dict(self.backend.describe()),
            deployment.results,
            list(self.backend.notes(prepared.to_deploy())),
            time.perf_counter() - deployment.started,
            list(prepared.diagnostics),
        )
        write_json(report.model(), Path(folder) / f"lab-{prepared.lab.name}.json")

    def close_all(self) -> None:
        for key in list(self.deployments):
            self.close(key)

    def context(self, deployment: _Deployment) -> CheckContext:
        return deployment.prepared.context(deployment.mesh, requests=self.settings.requests)


_LABS = pytest.StashKey[_Labs]()


class LabFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from meshlab.checks import load_checked_lab

        for check in load_checked_lab(self.path).checks:
            yield LabCheckItem.from_parent(self, name=check.name, check=check)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, MeshlabError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class CheckFailed(Exception):
    """A lab check did not hold; its message is the whole report."""


class LabCheckItem(pytest.Item):
    def __init__(self, *, check: Check, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.add_marker(pytest.mark.meshlab_lab)

    @property
    def lab_dir(self) -> Path:
        return self.path.parent

    def runtest(self) -> None:
        labs = self.config.stash[_LABS]
        try:
            deployment = labs.deployment(self.lab_dir)
        except BackendUnavailable as exc:
            if self.config.getoption("backend") != "embedded":
                pytest.skip(str(exc))
            raise
        result: CheckResult = run_check(self.check, labs.context(deployment))
        deployment.results.append(result)
        self.user_properties += [
            ("points", result.points),
            ("points_awarded", result.points_awarded),
            ("requests", result.requests),
            ("outcome", result.outcome),
        ]
        if not result.passed:
            raise CheckFailed(result.message + _diagnostics(deployment.mesh))
        print(result.message)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CheckFailed | MeshlabError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.check.location.line - 1, f"{self.lab_dir.name}::{self.name}"


def _diagnostics(mesh: Deployed) -> str:
    """On a real cluster, a failed check also shows pods, events and the probe's routes."""
    text = mesh.diagnostics()
    return f"\n{text}" if text else ""


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Tear a lab down right after its last item, so labs never run side by side."""
    labs = item.config.stash[_LABS]
    lab_dir = _lab_dir_of(item)
    if lab_dir is not None and (nextitem is None or _lab_dir_of(nextitem) != lab_dir):
        labs.close(lab_dir)


def _lab_dir_of(item: pytest.Item) -> Path | None:
    if isinstance(item, LabCheckItem):
        return item.lab_dir.resolve()
    folder = item.path.parent
    return folder.resolve() if (folder / LAB_FILE).is_file() else None


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mesh_backend(request: pytest.FixtureRequest) -> Backend:
    """The session's backend (from --backend); deploys labs on demand."""
    return request.config.stash[_LABS].backend


@dataclass
class AppliedLab:
    """A lab deployed on the session's backend: its prepared objects and the live mesh."""

    prepared: PreparedLab
    mesh: Deployed
    _context: Callable[[], CheckContext]
    notes: list[Note] = field(default_factory=list)  # what the backend does not simulate

    def run_check(self, name: str) -> CheckResult:
        check = next((c for c in self.prepared.checks if c.name == name), None)
        if check is None:
            raise KeyError(f"lab {self.prepared.lab.name} has no check named {name!r}")
        return run_check(check, self._context())


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> AppliedLab:
    """The lab whose folder holds the requesting test file, applied (shared with its checks)."""
    folder = request.path.parent
    if not (folder / LAB_FILE).is_file():
        raise InputError(f"the `lab` fixture needs a {LAB_FILE} next to {request.path.name}")
    labs = request.config.stash[_LABS]
    try:
        deployment = labs.deployment(folder)
    except BackendUnavailable as exc:
        if request.config.getoption("backend") != "embedded":
            pytest.skip(str(exc))  # as the lab's own check items do
        raise
    prepared = deployment.prepared
    notes = [*prepared.unsimulated, *labs.backend.notes(prepared.to_deploy())]
    return AppliedLab(deployment.prepared, deployment.mesh, lambda: labs.context(deployment), notes)


Probe = Callable[..., Counter[str]]


@pytest.fixture
def probe(lab: AppliedLab) -> Probe:
    """`probe(url, n=100, by="version", headers=None)`: bucket counts of n requests."""

    def send(
        url: str,
        n: int = 100,
        by: str = "version",
        headers: dict[str, str] | None = None,
        method: str = "GET",
    ) -> Counter[str]:
        outcomes = lab.mesh.send(ProbeRequest(url, method, headers or {}), n)
        return Counter(o.bucket(by) for o in outcomes)

    return send


@pytest.fixture
def mesh(lab: AppliedLab) -> Deployed:
    """The deployed mesh of this folder's lab: `mesh.send(ProbeRequest(...), n)` (a fresh
    session per call), or `with mesh.session() as s:` for a client that keeps its cookies."""
    return lab.mesh
