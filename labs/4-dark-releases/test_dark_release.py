"""Lab 4's own tests: what the browser shows with and without the dark-release header, and a
student's mistake, a misspelled subset in the staff service's VirtualService.

The mistake is made in a copy of the lab (tmp_path), deployed on the session's backend next
to the lab itself; only the check it breaks is run.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

from meshlab.backends.base import Backend, Deployed
from meshlab.mesh.request import Origin, ProbeRequest
from meshlab.pipeline import prepare, run_prepared

LAB = Path(__file__).parent
BROWSER = Origin("browser")
DRIVER = "http://192.168.49.2:31380/api/vehicles/driver/City%20Truck"
PLACEHOLDER = "https://rac-istio-course-images.s3.amazonaws.com/placeholder.png"


def broken_copy(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """The lab, copied, with one edit a student might make (the edit must apply)."""
    copy = tmp_path / LAB.name
    shutil.copytree(LAB, copy, ignore=shutil.ignore_patterns("test_*", "__pycache__"))
    text = (copy / file).read_text()
    assert old in text, f"{file} no longer holds {old!r}: update this test"
    (copy / file).write_text(text.replace(old, new, 1))
    return copy


def run_one(lab_dir: Path, check: str, backend: Backend) -> tuple[str, str]:
    """Run one check of a lab folder (it must fail): its message, and the static analysis'
    findings that `meshlab run` prints above it."""
    prepared = prepare(lab_dir)
    only = tuple(c for c in prepared.checks if c.name == check)
    report = run_prepared(replace(prepared, checks=only), backend=backend)
    (result,) = report.results
    assert not result.passed, result.message
    return result.message, "\n".join(str(d) for d in prepared.diagnostics)


def test_the_header_shows_the_risky_builds_photo(mesh: Deployed) -> None:
    """The user's view: with the header the driver comes with a real photo (the risky build),
    without it with the placeholder (the safe build)."""
    dark = ProbeRequest(DRIVER, headers={"x-my-header": "canary"}, origin=BROWSER)
    for outcome in mesh.send(dark, 20):
        assert outcome.status == 200, outcome
        assert json.loads(outcome.body)["photo"] != PLACEHOLDER
    for outcome in mesh.send(ProbeRequest(DRIVER, origin=BROWSER), 20):
        assert outcome.status == 200, outcome
        assert json.loads(outcome.body)["photo"] == PLACEHOLDER


def test_a_misspelled_subset_breaks_the_dark_release(tmp_path: Path, mesh_backend: Backend) -> None:
    """The header route sends to subset `riskey`, which no DestinationRule defines: the
    api-gateway's sidecar answers its call 503 NC, the message names that hop, and the
    analysis names the subset and its line."""
    copy = broken_copy(tmp_path, "dark-release-rules.yaml", "subset: risky", "subset: riskey")
    message, analysis = run_one(copy, "header-reaches-risky-staff", mesh_backend)
    assert "HTTP 503 at fleetman-staff-service (NC)" in message, message
    assert "IST0101" in analysis, analysis
    assert 'subset "riskey"' in analysis, analysis
