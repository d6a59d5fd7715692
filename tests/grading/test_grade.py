"""`meshlab grade` on the fake backend that does what the configuration says (meshlab's own
reading of it): exact points for every submission of the class, the outputs' contracts,
shards and their merge. tests/grading/test_grade_envoy.py runs a few through real Envoy."""

from __future__ import annotations

import csv
import io
import json
import random
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
from grading_class import CLASS, instructor_lab, write_class

from meshlab.backends.base import Backend, LabToDeploy, Outcome
from meshlab.backends.fake import FakeMesh
from meshlab.grading.grader import Shard, grade, merge_reports
from meshlab.grading.model import ClassReport
from meshlab.grading.output import csv_text, junit_xml, markdown_table, summary_lines
from meshlab.mesh.expect import configured_split
from meshlab.mesh.request import ProbeRequest
from meshlab.pipeline import RunOptions


class ConfiguredBackend(Backend):
    """Answers each request as the plan routes it (a subset no one defines: 503 NC)."""

    name = "configured-fake"

    def __init__(self) -> None:
        self.meshes: list[FakeMesh] = []

    def describe(self) -> Mapping[str, str]:
        return {"backend": self.name}

    @contextmanager
    def deploy(self, lab: LabToDeploy) -> Iterator[FakeMesh]:
        plan = lab.plan

        def respond(request: ProbeRequest, rng: random.Random) -> Outcome:
            split = configured_split(plan, request, "version")
            buckets = list(split.shares)
            bucket = rng.choices(buckets, [split.shares[b] for b in buckets])[0]
            cause = next((c for c in split.causes if c.bucket == bucket), None)
            if cause is not None:
                return Outcome(status=503, response_flags=cause.flags or "UH")
            return Outcome(status=200, pod=f"pod-{bucket}", labels={"version": bucket})

        mesh = FakeMesh(respond, random.Random(7))
        self.meshes.append(mesh)
        yield mesh


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> ClassReport:
    tmp = tmp_path_factory.mktemp("class")
    return grade(instructor_lab(tmp), write_class(tmp), RunOptions(), ConfiguredBackend(), jobs=4)


def by_name(report: ClassReport) -> dict[str, object]:
    return {s.name: s for s in report.submissions}


@pytest.mark.parametrize("name", sorted(CLASS))
def test_each_submission_gets_exactly_its_points(graded: ClassReport, name: str) -> None:
    expected = CLASS[name]
    s = next(s for s in graded.submissions if s.name == name)
    assert s.points == expected.points, (s.error, s.checks)
    assert s.max_points == 1
    assert s.passed is (expected.points == 1)
    assert [c.name for c in s.checks] == ["canary-split"]
    if expected.error is None:
        assert s.error is None
        assert s.checks[0].outcome == ("pass" if expected.points else "fail")
    else:
        assert s.error is not None
        assert expected.error in s.error, s.error
        assert s.error.startswith(f"{name}/"), s.error  # the student's file, not a temp path
        assert "/tmp/" not in s.error
        assert s.checks[0].outcome == "not run"
    for fragment in expected.ignored:
        assert any(i.startswith(fragment) for i in s.ignored), s.ignored


def test_the_report_is_sorted_and_keeps_the_contract(graded: ClassReport) -> None:
    data = json.loads(graded.model_dump_json())
    assert data["lab"] == "2-traffic"
    names = [s["name"] for s in data["submissions"]]
    assert names == sorted(CLASS)
    for s in data["submissions"]:
        assert {"name", "points", "max_points", "passed", "error", "checks"} <= set(s)
        for c in s["checks"]:
            assert {"name", "points", "points_awarded", "outcome", "message"} <= set(c)


def test_a_wrong_split_says_what_went_wrong(graded: ClassReport) -> None:
    s = next(s for s in graded.submissions if s.name == "wrong-misspelled-host")
    assert s.checks[0].message.startswith("canary-split FAILED: risky got")
    assert "expected 10.0%" in s.checks[0].message


def test_junit_has_a_suite_per_student_with_times(graded: ClassReport) -> None:
    root = ET.fromstring(junit_xml(graded))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert sorted(suites) == sorted(CLASS)
    passing = suites["correct-as-shipped"]
    assert float(passing.get("time") or 0) > 0
    assert passing.get("failures") == "0"
    assert suites["wrong-50-50"].get("failures") == "1"
    assert suites["broken-yaml"].get("errors") == "1"
    case = passing.find("testcase")
    assert case is not None
    assert float(case.get("time") or 0) > 0
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props == {"points": "1", "points_awarded": "1"}


def test_csv_and_markdown_have_a_row_per_student(graded: ClassReport) -> None:
    rows = list(csv.DictReader(io.StringIO(csv_text(graded))))
    assert [r["name"] for r in rows] == sorted(CLASS)
    assert {r["name"]: r["canary-split"] for r in rows} == {
        n: f"{s.points:g}" for n, s in CLASS.items()
    }
    assert rows[0].keys() == {"name", "points", "max_points", "canary-split", "error"}
    table = markdown_table(graded).splitlines()
    assert table[2] == "| submission | points | canary-split | note |"
    assert len([line for line in table if line.startswith("| ")]) == 1 + len(CLASS)
    lines = summary_lines(graded)
    assert lines[-1] == f"{len(CLASS)} submissions: 5 full points, 5 could not run"


def test_shards_cover_the_class_once_and_merge_back(tmp_path: Path) -> None:
    names = ["correct-as-shipped", "wrong-50-50", "broken-yaml"]
    lab, subs = instructor_lab(tmp_path), write_class(tmp_path, names)
    shards = [
        grade(lab, subs, RunOptions(), ConfiguredBackend(), jobs=2, shard=Shard(i, 2))
        for i in (1, 2)
    ]
    assert [len(s.submissions) for s in shards] == [2, 1]
    merged = merge_reports(shards)
    assert [(s.name, s.points) for s in merged.submissions] == [
        ("broken-yaml", 0),
        ("correct-as-shipped", 1),
        ("wrong-50-50", 0),
    ]
    with pytest.raises(Exception, match="more than one report"):
        merge_reports([shards[0], shards[0]])


@pytest.mark.parametrize(
    ("text", "ok"), [("1/4", True), ("4/4", True), ("0/4", False), ("5/4", False), ("x", False)]
)
def test_shard_parse(text: str, ok: bool) -> None:
    if ok:
        assert str(Shard.parse(text)) == text
    else:
        with pytest.raises(ValueError):
            Shard.parse(text)


def test_an_interrupted_batch_stops_the_running_submissions_within_a_request(
    tmp_path: Path,
) -> None:
    """Ctrl-C (here: raised by the first graded submission, a broken one) stops the others
    mid-check: each sends at most one more request, instead of the hundreds a correct 90/10
    needs."""
    names = ["broken-yaml", "correct-as-shipped", "correct-api-v1"]
    lab, subs = instructor_lab(tmp_path), write_class(tmp_path, names)
    backend = ConfiguredBackend()
    slow = backend.deploy

    @contextmanager
    def deploy(to: LabToDeploy) -> Iterator[FakeMesh]:
        with slow(to) as mesh:
            respond = mesh.responder

            def slowly(request: ProbeRequest, rng: random.Random) -> Outcome:
                time.sleep(0.01)
                return respond(request, rng)

            mesh.responder = slowly
            yield mesh

    backend.deploy = deploy  # type: ignore[method-assign]

    def done(graded: object) -> None:
        while len(backend.meshes) < 2 or any(not m.sent for m in backend.meshes):
            time.sleep(0.01)  # both correct ones are sending
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        grade(lab, subs, RunOptions(), backend, jobs=3, done=done)
    assert len(backend.meshes) == 2
    assert all(0 < len(m.sent) < 100 for m in backend.meshes), [len(m.sent) for m in backend.meshes]


def test_a_stop_wrapped_in_another_error_stops_the_batch(tmp_path: Path) -> None:
    """SIGTERM as a class is built mid-submission reaches the grader inside a RuntimeError
    (Python 3.11's `__set_name__`): the batch stops, the submission is not graded 0 for an
    "internal error" while the CI job is being cancelled."""
    lab, subs = instructor_lab(tmp_path), write_class(tmp_path, ["correct-as-shipped"])
    backend = ConfiguredBackend()

    @contextmanager
    def deploy(to: LabToDeploy) -> Iterator[FakeMesh]:
        raise RuntimeError("Error calling __set_name__") from SystemExit(143)
        yield  # a generator, as the real deploy is

    backend.deploy = deploy  # type: ignore[method-assign]
    with pytest.raises(SystemExit) as stopped:
        grade(lab, subs, RunOptions(), backend)
    assert stopped.value.code == 143


def test_errors_name_the_students_file_from_any_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from the temp folder itself, messages show paths relative to it: still the
    student's folder, never `meshlab-grade-.../2-traffic/`."""
    lab, subs = instructor_lab(tmp_path), write_class(tmp_path, ["broken-yaml"])
    monkeypatch.chdir(tempfile.gettempdir())
    (s,) = grade(lab, subs, RunOptions(), ConfiguredBackend()).submissions
    assert s.error is not None
    assert s.error.startswith("broken-yaml/istio-rules.yaml:2:1: error: invalid YAML"), s.error


def test_a_symlink_or_a_file_in_place_of_a_folder_is_graded_0(tmp_path: Path) -> None:
    lab, subs = instructor_lab(tmp_path), write_class(tmp_path, ["correct-as-shipped"])
    (subs / "linked").symlink_to(subs / "correct-as-shipped")
    (subs / "notes.txt").write_text("not a submission\n")
    (subs / ".git").mkdir()  # hidden: not a submission at all
    report = grade(lab, subs, RunOptions(), ConfiguredBackend())
    assert [(s.name, s.points, s.error) for s in report.submissions] == [
        ("correct-as-shipped", 1, None),
        (
            "linked",
            0,
            "error: submission 'linked' is a symlink\n  hint: each submission is a "
            "folder holding the lab's files the student changed",
        ),
        (
            "notes.txt",
            0,
            "error: submission 'notes.txt' is not a folder\n  hint: each "
            "submission is a folder holding the lab's files the student changed",
        ),
    ]
