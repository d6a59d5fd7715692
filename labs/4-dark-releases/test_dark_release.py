"""Lab 4's own tests: what the browser shows with and without the dark-release header, and a
student's mistake, a misspelled subset in the staff service's VirtualService.

The mistake is made in a copy of the lab (tmp_path), deployed on the session's backend next
to the lab itself; only the check it breaks is run.
"""

from __future__ import annotations

import json
from pathlib import Path

from meshlab.backends.base import Backend, Deployed
from meshlab.labtests import broken_copy, run_failing_check
from meshlab.mesh.request import Origin, ProbeRequest

LAB = Path(__file__).parent
BROWSER = Origin("browser")
DRIVER = "http://192.168.49.2:31380/api/vehicles/driver/City%20Truck"
PLACEHOLDER = "https://rac-istio-course-images.s3.amazonaws.com/placeholder.png"


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
    copy = broken_copy(LAB, tmp_path, "dark-release-rules.yaml", "subset: risky", "subset: riskey")
    message, analysis = run_failing_check(copy, "header-reaches-risky-staff", mesh_backend)
    assert "HTTP 503 at fleetman-staff-service (NC)" in message, message
    assert "IST0101" in analysis, analysis
    assert 'subset "riskey"' in analysis, analysis
