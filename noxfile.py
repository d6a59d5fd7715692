"""Sessions for students (one per lab), the test suite, lint, docs and benchmarks.

Dependencies come from pyproject.toml (the package and its dependency groups); virtualenvs are
reused and installs skipped when pyproject.toml has not changed, so a second run is fast.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import nox

nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "tests"]

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
LABS = sorted(p.parent for p in (ROOT / "labs").glob("*/lab.yaml"))


def install(session: nox.Session, *groups: str, extras: str = "") -> None:
    """Install the project (with `extras`, and dependency groups) unless this venv already has
    exactly that."""
    requirements = [r for group in groups for r in nox.project.dependency_groups(PYPROJECT, group)]
    stamp_text = (ROOT / "pyproject.toml").read_text() + "\n".join(requirements) + extras
    stamp = hashlib.sha256(stamp_text.encode()).hexdigest()
    marker = Path(session.virtualenv.location) / ".meshlab-installed"
    if marker.exists() and marker.read_text() == stamp:
        return
    session.install("-e", f".[{extras}]" if extras else ".", *requirements)
    marker.write_text(stamp)


def _wants_kind(posargs: list[str]) -> bool:
    """`-- --backend kind` (or `--backend=kind`): the lab runs on a real cluster."""
    return "--backend=kind" in posargs or ("--backend", "kind") in itertools.pairwise(posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and integration tests, then every lab on the embedded backend."""
    install(session, "test", extras="kind")  # the kind backend's tests use its client libraries
    Path("reports").mkdir(exist_ok=True)
    # one worker per core, a test file's tests on one worker (they share module fixtures and
    # a lab's deployment); `nox -s tests -- -n 0` runs them in one process
    parallel = ["-n", "auto", "--dist", "loadfile"]
    session.run("pytest", *parallel, "--junitxml=reports/junit.xml", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and mypy --strict on the package."""
    install(session, "lint")
    session.run("ruff", "check", "src", "tests", "labs", "noxfile.py", "bench")
    session.run("ruff", "format", "--check", "src", "tests", "labs", "noxfile.py", "bench")
    session.run("mypy")


@nox.session(default=False)
def fuzz(session: nox.Session) -> None:
    """The fuzz tests at length: MESHLAB_FUZZ_EXAMPLES mutated labs (default 5000, ~10 min),
    shrinking any failure to its smallest input. The suite runs a bounded 100."""
    install(session, "test")
    env = {"MESHLAB_FUZZ_PROFILE": "fuzz"}
    session.run("pytest", "-p", "no:cacheprovider", "tests/fuzz", *session.posargs, env=env)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Time to verdict for lab 2, requests used vs the design, requests/s through Envoy, the
    whole `meshlab run` and lab-session walls against their goals (`-- --only walls`: those
    alone; `-- --baseline-src DIR`: side by side with another checkout)."""
    install(session, "test")
    session.run("python", "bench/run.py", *session.posargs)


# Labs whose latest run the site shows as a results page (docs/results/lab-NAME.md, generated).
RESULTS_LABS = [
    "2-traffic",
    "2-traffic-stickiness",
    "3-gateways-ending",
    "3-gateways-prefix",
    "3-gateways-subdomain",
    "4-dark-releases",
    "4-dark-releases-no-propagation",
    "5-fault-injection",
    "6-circuit-breaking",
    "7-mtls",
    "10-service-entries",
]


def _results_pages(session: nox.Session) -> None:
    """Run each lab of RESULTS_LABS and render its report as a page under docs/results/.

    A failing lab (exit 1) still gets its page; a lab that cannot run (exit 2 or 3) stops here.
    """
    for lab in RESULTS_LABS:
        report = f"reports/lab-{lab}.json"
        session.run("meshlab", "run", f"labs/{lab}", "--json", report, success_codes=[0, 1])
        session.run("meshlab", "results-page", report, "-o", f"docs/results/lab-{lab}.md")


@nox.session(default=False)
def docs(session: nox.Session) -> None:
    """Run the labs of RESULTS_LABS, render their results pages, then build the course site
    strictly, offline."""
    install(session, "docs")
    _results_pages(session)
    session.run("mkdocs", "build", "--strict", *session.posargs)


@nox.session(name="docs-serve", default=False)
def docs_serve(session: nox.Session) -> None:
    """Run the labs of RESULTS_LABS, render their results pages, serve the site with live reload
    on 127.0.0.1:8000."""
    install(session, "docs")
    _results_pages(session)
    session.run("mkdocs", "serve", "-a", "127.0.0.1:8000", *session.posargs)


def _lab_session(lab: Path) -> None:
    title = next(
        (
            line.split(":", 1)[1].strip()
            for line in (lab / "lab.yaml").read_text().splitlines()
            if line.startswith("title:")
        ),
        lab.name,
    )

    def run_lab(session: nox.Session) -> None:
        kind = _wants_kind(session.posargs)
        install(session, "lab", extras="kind" if kind else "")
        report = f"reports/lab-{lab.name}.json"
        own_tests = sorted(str(p.relative_to(ROOT)) for p in lab.glob("test_*.py"))
        if not kind:
            # One pytest run deploys the mesh once for the lab's checks (lab.yaml items) and
            # its own tests, and writes the JSON report `meshlab run --json` would: half
            # the time of a run followed by pytest (`-rP` shows each check's verdict).
            reports = ["--meshlab-reports", "reports"]
            session.run("pytest", "-q", "-rP", f"labs/{lab.name}", *reports, *session.posargs)
            return
        # On kind, the lab's own tests reuse the cluster `meshlab run` made; pytest deletes
        # it afterwards (meshlab created it) unless --keep-cluster was asked for.
        handover = (
            kind
            and own_tests
            and not {"--keep-cluster", "--kubeconfig"} & {a.split("=")[0] for a in session.posargs}
        )
        extra = ["--keep-cluster"] if handover else []
        command = ["meshlab", "run", f"labs/{lab.name}", "--json", report, *session.posargs]
        try:
            session.run(*command, *extra)
        except nox.command.CommandFailed:
            if not handover:
                raise
            session.run("pytest", "-q", *own_tests, *session.posargs, success_codes=range(256))
            session.error(f"meshlab run labs/{lab.name} failed; its output is above")
        if own_tests:
            session.run("pytest", "-q", *own_tests, *session.posargs)

    run_lab.__doc__ = f"Lab {lab.name}: {title} (pass `-- --backend kind` for a real cluster)."
    nox.session(name=f"lab-{lab.name}", default=False)(run_lab)


for _lab in LABS:
    _lab_session(_lab)
