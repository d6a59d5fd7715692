"""Extra tests for a lab. They sit next to lab.yaml and share the lab's deployment."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from meshlab.backends.base import Backend, Deployed
from meshlab.mesh.request import ProbeRequest
from meshlab.pytest_plugin import AppliedLab

URL = "http://fleetman-staff-service:8080/driver/City%20Truck"


def test_only_staff_pods_answer(probe: Callable[..., Counter[str]]) -> None:
    counts = probe(URL, n=200)  # Counter: version label of the answering pod -> requests
    assert sum(counts.values()) == 200
    assert set(counts) <= {"safe", "risky"}, counts


def test_both_builds_are_deployed(mesh: Deployed) -> None:
    staff = [p for p in mesh.pods if p.labels.get("app") == "staff-service"]
    assert sorted(p.labels["version"] for p in staff) == ["risky", "safe"]


def test_no_request_fails(mesh: Deployed) -> None:
    with mesh.session() as session:  # a fresh client: cookies stay in this block
        outcomes = session.send(ProbeRequest(URL), 50)
    assert not [o for o in outcomes if o.failed]
    assert all(o.latency is not None and o.headers for o in outcomes)


def test_split_check_again(lab: AppliedLab) -> None:
    result = lab.run_check("canary-split")
    assert result.passed, result.message


def test_backend(mesh_backend: Backend) -> None:
    assert mesh_backend.describe()["backend"] == "embedded"
