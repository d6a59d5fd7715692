"""Lab 2's own Python test: what each version of the staff service answers.

The placeholder build (version safe) shows the same placeholder photo for every driver; the
canary (version risky) shows each driver's real photo. This is what the course's canary
changes, and why the risky share is worth checking.
"""

from __future__ import annotations

import json

from meshlab.backends.base import Deployed
from meshlab.mesh.request import ProbeRequest

PLACEHOLDER = "https://rac-istio-course-images.s3.amazonaws.com/placeholder.png"
URL = "http://fleetman-staff-service:8080/driver/City%20Truck"


def test_each_version_answers_as_its_image_does(mesh: Deployed) -> None:
    outcomes = mesh.send(ProbeRequest(URL), 200)
    photos: dict[str, set[str]] = {}
    for outcome in outcomes:
        assert outcome.status == 200, outcome
        driver = json.loads(outcome.body)
        assert driver["name"] == "Pam Parry"
        photos.setdefault(outcome.labels["version"], set()).add(driver["photo"])
    assert photos["safe"] == {PLACEHOLDER}
    # 200 requests at 10% miss the canary with probability 0.9**200, about 7e-10.
    assert photos["risky"]
    assert PLACEHOLDER not in photos["risky"]
