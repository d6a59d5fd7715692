"""The pytest plugin, driven through pytester against copies of lab 2 on the real Envoy."""

from __future__ import annotations

import shutil
from pathlib import Path
from xml.etree import ElementTree

import pytest

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
    result = pytester.runpytest("-rP", str(lab_copy))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*canary-split passed: risky got*configured 10.0%*"])


def test_failing_lab_reports_the_cause_without_traceback(
    pytester: pytest.Pytester, lab_copy: Path
) -> None:
    rules = lab_copy / "istio-rules.yaml"
    rules.write_text(rules.read_text().replace("  - name: risky", "  - name: risky-group"))
    result = pytester.runpytest(str(lab_copy))
    result.assert_outcomes(failed=1)
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
