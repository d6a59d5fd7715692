"""The split check end to end on the fake backend: verdicts, messages, report fields."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from meshlab.backends.fake import FakeBackend, weighted_pods
from meshlab.pipeline import RunOptions, run_lab
from meshlab.report.page import load_report
from meshlab.report.text import render_lines, render_text, write_json, write_junit


def _run(lab: Path, weights: dict[str, float], seed: int = 1, **options: object):
    return run_lab(lab, RunOptions(**options), backend=FakeBackend(weighted_pods(weights), seed))


def test_correct_split_passes_with_the_canary_share_and_its_source(
    lab2_configured: Path,
) -> None:
    report = _run(lab2_configured, {"safe": 90, "risky": 10})
    result = report.results[0]
    assert result.passed
    assert result.expected == pytest.approx({"safe": 0.9, "risky": 0.1})
    assert sum(result.observed.values()) == result.requests
    first = result.message.splitlines()[0]
    assert first.startswith("canary-split passed: risky got")
    assert "configured 10.0%" in first
    assert "istio-rules.yaml:21" in first  # the risky weight's line
    assert "inside the band 5–20%" in first


def test_wrong_split_fails_fast_and_names_the_weight(lab2_configured: Path) -> None:
    result = _run(lab2_configured, {"safe": 50, "risky": 50}).results[0]
    assert not result.passed
    assert result.requests < 200  # gross errors stop early
    assert result.message.startswith("canary-split FAILED: risky got")
    assert "configured 10.0% (VirtualService default/fleetman-staff-service" in result.message


def test_canary_starved_to_one_percent_fails(lab2_dir: Path) -> None:
    assert not _run(lab2_dir, {"safe": 99, "risky": 1}).results[0].passed


def test_failed_requests_are_their_own_bucket(lab2_dir: Path) -> None:
    result = _run(lab2_dir, {"safe": 90, "HTTP 503": 10}).results[0]
    assert not result.passed
    assert "HTTP 503" in result.observed
    assert result.details["response_flags"]["HTTP 503"] == {"UH": result.observed["HTTP 503"]}
    assert "risky got 0/" in result.message


def test_fixed_requests_option_sends_exactly_n(lab2_dir: Path) -> None:
    result = _run(lab2_dir, {"safe": 90, "risky": 10}, requests=300).results[0]
    assert result.requests == 300
    assert result.details["method"].startswith("fixed-N")
    assert "cannot promise to catch" in result.message


def test_explicit_expectation_is_compared_with_the_configuration(
    tmp_path: Path, lab2_dir: Path
) -> None:
    lab = tmp_path / "lab"
    shutil.copytree(lab2_dir, lab)
    lab_file = lab / "lab.yaml"
    goal, even = "expect: {safe: 90, risky: 10}", "expect: {safe: 50, risky: 50}"
    lab_file.write_text(lab_file.read_text().replace(goal, even))
    result = _run(lab, {"safe": 90, "risky": 10}).results[0]
    assert not result.passed
    assert "expected 50.0%; the configuration gives it " in result.message


def test_json_report_has_the_documented_shape(tmp_path: Path, lab2_dir: Path) -> None:
    report = _run(lab2_dir, {"safe": 90, "risky": 10})
    path = tmp_path / "r.json"
    write_json(report.model(), path)
    data = json.loads(path.read_text())
    assert {"lab", "backend", "passed", "checks"} <= set(data)
    assert (data["lab"], data["backend"], data["passed"]) == ("2-traffic", "fake", True)
    check = data["checks"][0]
    assert {"name", "kind", "passed", "requests", "expected", "observed"} <= set(check)
    assert check["expected"] == pytest.approx({"safe": 0.9, "risky": 0.1})
    assert (
        render_text(report.model()).splitlines()[-1].startswith("1 passed, 0 failed (1/1 points)")
    )


def test_request_to_a_host_no_service_has_fails_with_the_cause(
    tmp_path: Path, lab2_dir: Path
) -> None:
    from meshlab.backends.base import Outcome

    lab = tmp_path / "lab"
    shutil.copytree(lab2_dir, lab)
    lab_file = lab / "lab.yaml"
    lab_file.write_text(lab_file.read_text().replace("fleetman-staff-service:8080", "staff:8080"))
    backend = FakeBackend(lambda request, rng: Outcome(status=None, error="could not resolve"))
    result = run_lab(lab, backend=backend).results[0]
    assert not result.passed
    assert "likely cause: no Service named 'staff' serves port 8080" in result.message


def test_the_json_report_is_the_models_dump_and_reads_back_typed(
    tmp_path: Path, lab2_dir: Path
) -> None:
    model = _run(lab2_dir, {"safe": 90, "risky": 10}).model()
    path = tmp_path / "r.json"
    write_json(model, path)
    assert load_report(path) == model
    (bucket, *_) = json.loads(path.read_text())["checks"][0]["buckets"]
    # The verdict's numbers are stored: the level of the interval and the pass interval.
    assert bucket["alpha"] == pytest.approx(1e-6)
    assert bucket["pass_interval"][0] <= bucket["share"] <= bucket["pass_interval"][1]


def test_junit_times_each_check(tmp_path: Path, lab2_dir: Path) -> None:
    import xml.etree.ElementTree as ET

    model = _run(lab2_dir, {"safe": 90, "risky": 10}).model()
    assert model.checks[0].seconds > 0
    write_junit(model, tmp_path / "j.xml")
    (case,) = ET.parse(tmp_path / "j.xml").getroot().iter("testcase")
    assert float(case.get("time", "0")) == pytest.approx(model.checks[0].seconds, abs=1e-3)


@pytest.mark.parametrize(
    ("weights", "style"), [({"safe": 9, "risky": 1}, "pass"), ({"safe": 1, "risky": 1}, "fail")]
)
def test_text_lines_carry_the_style_of_their_verdict(
    lab2_dir: Path, weights: dict[str, float], style: str
) -> None:
    model = _run(lab2_dir, weights).model()
    lines = list(render_lines(model))
    styled = [(line.split(" ")[0], s) for line, s in lines if s != "plain"]
    assert styled == [("canary-split", style), (lines[-1][0].split(" ")[0], style)]
    assert "\n".join(line for line, _ in lines) == render_text(model)
