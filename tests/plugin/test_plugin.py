"""The pytest plugin, driven through pytester against copies of lab 2 on the real Envoy."""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path
from xml.etree import ElementTree

import pytest

from meshlab.backends.embedded.castore import STORE_ENV, fill_store
from meshlab.pytest_plugin import _LABS
from meshlab.report.model import RunReport

pytestmark = pytest.mark.envoy


@pytest.fixture
def lab_copy(pytester: pytest.Pytester, lab2_dir: Path) -> Path:
    target = pytester.path / "lab2"
    shutil.copytree(lab2_dir, target, ignore=shutil.ignore_patterns("__pycache__", "test_*.py"))
    return target


def test_checks_are_collected_as_items(pytester: pytest.Pytester, lab_copy: Path) -> None:
    result = pytester.runpytest("--collect-only", "-q", str(lab_copy))
    result.stdout.fnmatch_lines(["*lab.yaml::canary-split*"])


def test_lab_passes_and_prints_the_verdict(pytester: pytest.Pytester, lab_copy: Path) -> None:
    """--meshlab-reports also writes the JSON report `meshlab run --json` would (the lab's nox
    session runs the lab once this way, for the docs' results page)."""
    reports = pytester.path / "reports"
    result = pytester.runpytest("-rP", str(lab_copy), "--meshlab-reports", str(reports))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*canary-split passed: risky got*expected 10.0%*"])
    report = json.loads((reports / "lab-lab2.json").read_text())
    assert report["passed"] is True
    assert report["backend"] == "embedded"
    (check,) = report["checks"]
    assert check["name"] == "canary-split"
    assert check["requests"] > 0
    RunReport.model_validate(report)  # what `meshlab results-page` reads


def test_failing_lab_reports_the_cause_without_traceback(
    pytester: pytest.Pytester, lab_copy: Path
) -> None:
    rules = lab_copy / "istio-rules.yaml"
    rules.write_text(rules.read_text().replace("  - name: risky", "  - name: risky-group"))
    reports = pytester.path / "reports"
    result = pytester.runpytest(str(lab_copy), "--meshlab-reports", str(reports))
    result.assert_outcomes(failed=1)
    assert json.loads((reports / "lab-lab2.json").read_text())["passed"] is False
    out = result.stdout.str()
    assert 'subset "risky" of host fleetman-staff-service is not defined' in out
    assert "503 NC" in out
    assert "Traceback" not in out


def test_invalid_lab_yaml_is_a_collection_error_with_position(
    pytester: pytest.Pytester, lab_copy: Path
) -> None:
    lab_file = lab_copy / "lab.yaml"
    lab_file.write_text(lab_file.read_text().replace("by: version", "by: version\n    bogus: 1"))
    result = pytester.runpytest(str(lab_copy))
    assert result.ret != 0
    out = result.stdout.str()
    assert 'lab.yaml:9:5: error: check (split): unknown field "checks[0].bogus"' in out
    assert "Traceback" not in out


def test_requests_option_sets_fixed_n_and_junit_properties(
    pytester: pytest.Pytester, lab_copy: Path
) -> None:
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest("--requests", "120", f"--junitxml={junit}", str(lab_copy))
    result.assert_outcomes(passed=1)
    props = {p.get("name"): p.get("value") for p in ElementTree.parse(junit).iter("property")}
    assert props["requests"] == "120"
    assert props["points"] == "1.0"


def test_lab_python_tests_share_the_deployment(pytester: pytest.Pytester, lab_copy: Path) -> None:
    (lab_copy / "test_extra.py").write_text(
        "def test_staff_pods_answer(probe, lab):\n"
        "    counts = probe('http://fleetman-staff-service:8080/driver/Village%20Truck', 40)\n"
        "    assert set(counts) <= {'safe', 'risky'} and sum(counts.values()) == 40\n"
        "    assert lab.run_check('canary-split').passed\n"
    )
    result = pytester.runpytest(str(lab_copy))
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("value", "why"), [("-5", "-5 is not in the range x>=1"), ("many", "'many' is not a whole")]
)
def test_bad_requests_is_a_usage_error_naming_the_option(
    pytester: pytest.Pytester, lab_copy: Path, value: str, why: str
) -> None:
    """The same declaration and validation as `meshlab run --requests` (meshlab.options)."""
    result = pytester.runpytest("--requests", value, str(lab_copy))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*argument --requests: {why}*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


# --- grading mode: a submission's Python is never imported ------------------------------

MARKER = "import pathlib; pathlib.Path({path!r}).write_text('imported')\n"


def _booby_trap(lab: Path, marks: Path) -> list[Path]:
    """Every Python file pytest could import from a lab folder writes a marker if it is."""
    files = ["conftest.py", "test_x.py", "__init__.py", "pytest_student.py"]
    for name in files:
        (lab / name).write_text(MARKER.format(path=str(marks / f"imported-{name}")))
    (lab / "test_x.py").write_text(
        (lab / "test_x.py").read_text() + "def test_student():\n    assert True\n"
    )
    return [marks / f"imported-{name}" for name in files]


def test_labs_only_mode_imports_nothing_from_the_lab(
    pytester: pytest.Pytester, lab_copy: Path
) -> None:
    """The command graders run (docs/reference/pytest.md) runs the lab.yaml checks and
    nothing else: no conftest.py (also a parent folder's), test_*.py or __init__.py."""
    marks = pytester.mkdir("marks")
    traps = _booby_trap(lab_copy, marks)
    (pytester.path / "conftest.py").write_text(MARKER.format(path=str(marks / "parent")))
    config = pytester.makefile(".ini", grader="[pytest]\n")
    result = pytester.runpytest_subprocess(
        "--meshlab-labs-only", "-c", str(config), "-p", "no:cacheprovider", str(lab_copy)
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*lab.yaml .*"])
    assert sorted(p.name for p in marks.iterdir()) == []
    assert all(not trap.exists() for trap in traps)


def test_without_labs_only_the_same_lab_imports_its_python(
    pytester: pytest.Pytester, lab_copy: Path
) -> None:
    """The traps above work: the ordinary mode (a course's own labs) imports them."""
    marks = pytester.mkdir("marks")
    _booby_trap(lab_copy, marks)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--co", str(lab_copy))
    assert result.ret == 0
    assert {p.name for p in marks.iterdir()} >= {"imported-conftest.py", "imported-test_x.py"}


def test_labs_only_refuses_a_config_file_from_the_graded_folder(
    pytester: pytest.Pytester, lab_copy: Path
) -> None:
    (lab_copy / "pytest.ini").write_text("[pytest]\n")
    result = pytester.runpytest_subprocess("--meshlab-labs-only", "--co", str(lab_copy))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--meshlab-labs-only: pytest read its configuration from*"])


@pytest.mark.parametrize("kept", [False, True], ids=["first-run", "ca-kept"])
def test_a_session_of_labs_starts_the_embedded_processes_ahead(
    pytester: pytest.Pytester, lab_copy: Path, monkeypatch: pytest.MonkeyPatch, kept: bool
) -> None:
    """`pytest LAB_DIR` (a lab session) starts Envoy, a host and (unless a mesh CA is kept
    from an earlier run) the CA while pytest collects; a session that may deploy nothing
    here (other paths) does not."""
    store = pytester.path / "cache"
    monkeypatch.setenv(STORE_ENV, str(store))
    if kept:
        fill_store(store / "mesh-ca", [], datetime.datetime.now(datetime.UTC))
    config = pytester.parseconfigure(str(lab_copy))
    warm = config.stash[_LABS].warm
    assert warm is not None
    try:
        names = {p.name for p in warm.group.processes}
        assert names == {"Envoy", "stand-in host"} | (set() if kept else {"mesh CA"})
    finally:
        config.stash[_LABS].close_backend()
    assert not warm.workdir.exists()
    assert all(not p.alive for p in warm.group.processes)
    other = pytester.parseconfigure(str(lab_copy), str(pytester.path))
    assert other.stash[_LABS].warm is None
