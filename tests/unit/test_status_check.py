"""`kind: status`: shares by HTTP status, class or Envoy flag; the example lab the docs show
(tests/examples/fault-status) runs as a lab of the suite, and here broken the way a student
would break it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from meshlab.backends.base import Outcome
from meshlab.backends.fake import FakeBackend
from meshlab.checks import load_checked_lab
from meshlab.checks.status import as_seen_by_client, bucket_by
from meshlab.errors import InputError
from meshlab.mesh.expect import configured_split
from meshlab.mesh.request import ProbeRequest
from meshlab.pipeline import prepare, run_lab

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fault-status"
URL = "http://fleetman-staff-service:8080/driver/City%20Truck"


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    copy = tmp_path / "fault-status"
    shutil.copytree(EXAMPLE, copy)
    return copy


def test_outcomes_are_counted_by_status_class_or_flag() -> None:
    faulted = Outcome(status=503, response_flags="FI")
    served = Outcome(status=200, pod="staff-1", labels={"version": "safe"})
    lost = Outcome(status=None, error="ConnectError")
    assert [bucket_by("status")(o) for o in (faulted, served, lost)] == [
        "503",
        "200",
        "no response",
    ]
    assert [bucket_by("class")(o) for o in (faulted, served)] == ["5xx", "2xx"]
    assert [bucket_by("flag")(o) for o in (faulted, served)] == ["FI", "-"]


def test_configured_shares_are_named_as_a_client_sees_them() -> None:
    prepared = prepare(EXAMPLE)
    configured = configured_split(prepared.plan, ProbeRequest(URL), "version")
    by_status = as_seen_by_client(configured, "status")
    assert by_status.shares == pytest.approx({"503": 0.5, "200": 0.5})
    assert "fault.yaml:10" in str(by_status.sources["503"][0])
    assert as_seen_by_client(configured, "flag").shares == pytest.approx({"FI": 0.5, "-": 0.5})
    assert as_seen_by_client(configured, "class").shares == pytest.approx({"5xx": 0.5, "2xx": 0.5})


def _responder(share_503: float):  # type: ignore[no-untyped-def]
    def respond(request: ProbeRequest, rng: object) -> Outcome:
        if rng.random() < share_503:  # type: ignore[attr-defined]
            return Outcome(status=503, response_flags="FI")
        return Outcome(status=200, pod="staff-1", labels={"version": "safe"})

    return respond


def test_the_course_goal_passes_when_half_the_requests_fail(lab: Path) -> None:
    report = run_lab(lab, backend=FakeBackend(_responder(0.5)))
    assert [r.outcome for r in report.results] == ["pass", "pass"]
    assert report.results[0].kind == "status"


def test_a_fault_that_never_fires_fails_and_says_what_the_configuration_gives(
    lab: Path,
) -> None:
    """The usual slip: the percentage left at 0 (or the fault on the wrong route)."""
    rules = lab / "fault.yaml"
    rules.write_text(rules.read_text().replace("value: 50", "value: 0"))
    report = run_lab(lab, backend=FakeBackend(_responder(0.0)))
    goal = report.results[0]
    assert goal.outcome == "fail"
    first = goal.message.splitlines()[0]
    assert first.startswith("users-see-half-503 FAILED:")
    assert "200 got 100.0%" in first
    assert "expected 50.0%; the configuration gives it 100.0%" in first
    assert "503 got 0/50 (0.0%), expected 50.0%" in goal.message


def test_a_key_that_is_no_status_is_refused_with_its_line(lab: Path) -> None:
    text = (lab / "lab.yaml").read_text().replace("{200: 50, 503: 50}", "{200: 50, FI: 50}")
    (lab / "lab.yaml").write_text(text)
    with pytest.raises(InputError) as caught:
        load_checked_lab(lab)
    assert "'FI' is not an HTTP status such as 200 or 503 (by: status)" in str(caught.value)
    assert caught.value.location is not None
    assert caught.value.location.line == 5


@pytest.mark.envoy
def test_the_example_passes_on_a_real_envoy() -> None:
    report = run_lab(EXAMPLE)
    assert [r.outcome for r in report.results] == ["pass", "pass"]
    assert report.results[1].observed.keys() == {"FI", "-"}
