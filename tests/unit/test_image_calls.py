"""The calls and answers the mesh layer's image facts predict (mesh/image_calls.py, read by
`expect: configured`) are the ones the embedded stand-ins make and give, image by image."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from meshlab.backends.embedded.standins.egress import EgressClient, Reply
from meshlab.backends.embedded.standins.fleetman_chain import api_gateway, position_tracker, webapp
from meshlab.backends.embedded.standins.server import PodSpec, Request
from meshlab.mesh.image_calls import (
    REPO_PREFIX,
    answer_status,
    callees,
    calls_anyone,
    calls_of,
)

HEADERS = {"x-my-header": "canary", "x-request-id": "r1", "user-agent": "t", "accept": "*/*"}
CASES = [
    ("webapp-angular:6", "GET", "/api/vehicles/driver/City%20Truck"),
    ("webapp-angular:6", "GET", "/api/vehicles/"),
    ("webapp-angular:6-experimental", "POST", "/api/vehicles/x"),
    ("webapp-angular:6", "GET", "/"),
    ("api-gateway:6", "GET", "/vehicles/driver/City%20Truck"),
    ("api-gateway:6", "GET", "/vehicles/"),
    ("api-gateway:6", "GET", "/vehicles/City%20Truck"),
    ("api-gateway:6", "GET", "/history/City%20Truck"),
    ("api-gateway:6-no-header-propagation", "GET", "/vehicles/driver/City%20Truck"),
    ("api-gateway:6", "POST", "/vehicles/"),
    ("api-gateway:6", "GET", "/"),
    ("position-tracker:6", "GET", "/vehicles/City%20Truck"),
    ("position-tracker:6", "GET", "/vehicles/"),
    ("position-tracker:6", "GET", "/history/City%20Truck"),
]


class Recorder(EgressClient):
    """An egress client that answers every call with `status` and remembers it."""

    def __init__(self, status: int) -> None:
        super().__init__(None)
        self.status = status
        self.calls: list[tuple[str, int, str, dict[str, str]]] = []

    def request(
        self,
        method: str,
        port: int,
        path: str,
        headers: Sequence[tuple[str, str]],
        body: bytes = b"",
    ) -> Reply:
        sent = dict(headers)
        self.calls.append((method, port, path, sent))
        payload = b"[]" if path == "/vehicles/" or path.startswith("/history/") else b"{}"
        if path.startswith("/vehicles/") and port == 8080 and "driver" not in path:
            payload = b"42" if path.count("/") == 2 and path != "/vehicles/" else payload
        return Reply(self.status, payload, {"content-type": "application/json"})


def serve(image: str, method: str, path: str, status: int) -> tuple[int, Recorder]:
    repo, tag = image.rsplit(":", 1)
    recorder = Recorder(status)
    make = {
        "webapp-angular": webapp,
        "api-gateway": api_gateway,
        "position-tracker": position_tracker,
    }
    behaviour = make[repo](tag, recorder)
    pod = PodSpec("p", "default", REPO_PREFIX + image, {}, (8080,))
    request = Request(pod, 8080, method, path, tuple(HEADERS.items()))
    return behaviour.handle(request).status, recorder


@pytest.mark.parametrize(("image", "method", "path"), CASES)
def test_the_calls_are_the_stand_ins(image: str, method: str, path: str) -> None:
    _, recorder = serve(image, method, path, 200)
    predicted = calls_of(REPO_PREFIX + image, method, path, HEADERS)
    made = [(m, port, p) for m, port, p, _ in recorder.calls]
    assert made == [(c.method, c.port, c.path) for c in predicted]
    for (_, _, _, sent), call in zip(recorder.calls, predicted, strict=True):
        host = sent.pop("host")
        assert host.split(":")[0] == call.host  # the Service, as the app names it
        carried = {k for k in sent if k in HEADERS}
        assert carried == {k for k in call.headers if k in HEADERS}


@pytest.mark.parametrize(("image", "method", "path"), [c for c in CASES if c[1] == "GET"])
@pytest.mark.parametrize("status", [200, 418, 500, 503, 504])
def test_the_answer_to_a_failed_call_is_the_stand_ins(
    image: str, method: str, path: str, status: int
) -> None:
    answered, recorder = serve(image, method, path, status)
    if not recorder.calls:
        return  # answered without a call: nothing to compare
    assert answer_status(REPO_PREFIX + image, (status,) * len(recorder.calls)) == answered


def _lab_images() -> set[str]:
    """Every image the course's labs run, plus each registered stand-in's repository."""
    from pathlib import Path

    import yaml

    from meshlab.backends.embedded.standins import _REGISTRY

    images = {f"{repo}:6" for repo in _REGISTRY} | {"nginx:1.27", "curlimages/curl:8.5.0"}
    for manifest in (Path(__file__).resolve().parents[2] / "labs").glob("*/*.yaml"):
        for doc in yaml.safe_load_all(manifest.read_text()):
            text = repr(doc)
            images.update(
                word.strip("'\",{}[]")
                for word in text.split()
                if word.strip("'\",{}[]").startswith(("richardchesterwood/", "docker.io/"))
            )
    return images


@pytest.mark.parametrize("image", sorted(_lab_images()))
def test_an_image_calls_anyone_exactly_when_its_stand_in_may_call(image: str) -> None:
    """`meshlab run` leaves out the sidecar of a workload that sends nothing (LabToDeploy.
    origins): the mesh layer's `calls_anyone` must agree with the stand-in that plays the
    image, whose `downstream` lists what it may call (a calling behaviour always has one)."""
    from meshlab.backends.embedded.standins import behaviour_for

    assert calls_anyone(image) == bool(behaviour_for(image).downstream), image


@pytest.mark.parametrize("image", sorted(_lab_images()))
def test_an_images_callees_are_what_its_stand_in_may_call(image: str) -> None:
    """mesh/reach.py follows a reached pod's calls to `callees`: they must be the services
    the stand-in calls (its `downstream` authorities), so no call leaves unfollowed."""
    from meshlab.backends.embedded.standins import behaviour_for

    named = {f"{host}:{port}" for host, port in callees(image)}
    assert named == set(behaviour_for(image).downstream), image


@pytest.mark.parametrize("image", sorted(i for i in _lab_images() if calls_anyone(i)))
def test_every_call_an_image_makes_is_one_of_its_callees(image: str) -> None:
    paths = ["/", "/api/vehicles/", "/api/vehicles/driver/City%20Truck", "/api/history/A",
             "/vehicles/", "/vehicles/driver/A", "/vehicles/A", "/history/A", "/api/x"]  # fmt: skip
    for path in paths:
        for call in calls_of(image, "GET", path, {"x-user": "a"}):
            assert (call.host, call.port) in callees(image), (image, path, call)
