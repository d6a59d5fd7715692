"""Lab 5's own tests: what the user sees of the aborted telemetry call, the course's own
warning about indentation, and a fault that aborts only some of the calls.

The mistakes are made in copies of the lab (tmp_path); the one that needs traffic is deployed
on the session's backend next to the lab itself, and only the check it breaks is run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshlab.backends.base import Backend, Deployed
from meshlab.errors import InputError
from meshlab.labtests import broken_copy, run_failing_check
from meshlab.mesh.request import Origin, ProbeRequest
from meshlab.pipeline import prepare

LAB = Path(__file__).parent
BROWSER = Origin("browser")
VEHICLE = "http://192.168.49.2:31380/api/vehicles/City%20Truck"


def test_the_vehicle_is_shown_without_its_speed(mesh: Deployed) -> None:
    """The position-tracker's telemetry call is aborted, so it answers the position alone."""
    for outcome in mesh.send(ProbeRequest(VEHICLE, origin=BROWSER), 20):
        assert outcome.status == 200, outcome
        found = json.loads(outcome.body)
        assert found["name"] == "City Truck"
        assert "speed" not in found, found


def test_httpstatus_indented_under_percentage_is_refused(tmp_path: Path) -> None:
    """The course's file warns "BE CAREFUL WITH INDENTATION!": `httpStatus` one level too
    deep is a field of `percentage`, which has none. The error names the file, line and
    field, before anything runs."""
    copy = broken_copy(
        LAB,
        tmp_path,
        "dark-release-rules.yaml",
        "          value: 100.0\n        httpStatus: 418",
        "          value: 100.0\n          httpStatus: 418",
    )
    with pytest.raises(InputError) as refused:
        prepare(copy)
    assert "dark-release-rules.yaml:22" in str(refused.value), refused.value
    assert "fault.abort.percentage.httpStatus" in str(refused.value), refused.value


def test_a_partial_abort_fails_the_check(tmp_path: Path, mesh_backend: Backend) -> None:
    """`percentage: 50` where the course aborts every call: about half of the telemetry
    calls succeed, and the message says what they got instead of 503."""
    copy = broken_copy(LAB, tmp_path, "fault-injection.yaml", "value: 100", "value: 50")
    message, _ = run_failing_check(copy, "telemetry-call-aborted", mesh_backend)
    assert "expected 100.0%" in message, message
    assert "200" in message, message
