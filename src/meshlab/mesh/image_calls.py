"""The calls a fleetman image makes to serve a request: which Service, which path, which
headers travel on. Facts from the course's sources (`src/6/...`: the webapp's nginx.conf,
the api-gateway's Feign clients, the position tracker's telemetry client), the same ones
the embedded stand-ins play (backends/embedded/standins/fleetman_chain.py; a test keeps the
two in step).

Why the mesh layer knows: a route's `timeout` cuts an answer that comes later than it, and
an answer comes late when a call behind it meets a fault delay; `expect: configured`
predicts that from these calls and the callers' routes (mesh/chain_latency.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import field

from meshlab.records import dataclass

REPO_PREFIX = "richardchesterwood/istio-fleetman-"
_HUB_PREFIXES = ("docker.io/library/", "docker.io/", "index.docker.io/")
API_GATEWAY = ("fleetman-api-gateway", 8080)  # nginx proxy_pass
TRACKER = ("fleetman-position-tracker.default.svc.cluster.local", 8080)
STAFF = ("fleetman-staff-service.default.svc.cluster.local", 8080)
TELEMETRY = ("fleetman-vehicle-telemetry", 8080)
_NOT_PROPAGATED = ("x-envoy-", "x-meshlab-")


@dataclass(frozen=True)
class Call:
    """One downstream call, as the caller's sidecar sees it."""

    host: str
    port: int
    path: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"


def image_parts(image: str) -> tuple[str, str]:
    """(repository without Docker Hub's prefixes, tag) of an image reference."""
    name = image.strip().split("@", 1)[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    repo, tag = (name[:colon], name[colon + 1 :]) if colon > slash else (name, "latest")
    for prefix in _HUB_PREFIXES:
        if repo.startswith(prefix):
            return repo[len(prefix) :], tag
    return repo, tag


def propagated(tag: str, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The Java images' PropagateHeadersInterceptor: every `x-` header (its first value:
    `getHeader`) but Envoy's and meshlab's own (a documented simplification); the
    `6-no-header-propagation` images have no interceptor."""
    if "no-header-propagation" in tag:
        return {}
    kept: dict[str, str] = {}
    for raw, value in headers:
        name = raw.lower()
        if name.startswith("x-") and not name.startswith(_NOT_PROPAGATED):
            kept.setdefault(name, value)
    return kept


# Every service each calling app may call, whatever the request (`calls_of` picks among them)
_CALLEES: Mapping[str, tuple[tuple[str, int], ...]] = {
    "webapp-angular": (API_GATEWAY,),
    "api-gateway": (TRACKER, STAFF),
    "position-tracker": (TELEMETRY,),
}


def callees(image: str) -> tuple[tuple[str, int], ...]:
    """Every (host, port) `image` may call to answer some request, as its code names them;
    none for an image that calls nobody."""
    repo, _ = image_parts(image)
    if not repo.startswith(REPO_PREFIX):
        return ()
    return _CALLEES.get(repo[len(REPO_PREFIX) :], ())


def calls_anyone(image: str) -> bool:
    """Whether `image` calls another service for some request (`calls_of` is never empty
    for it): a pod running any other image never sends a request through its sidecar."""
    return bool(callees(image))


def calls_of(image: str, method: str, path: str, headers: Mapping[str, str]) -> tuple[Call, ...]:
    """The calls `image` makes, one after the other, to answer `method path` (none for an
    image that calls nobody, or a path it answers itself)."""
    repo, tag = image_parts(image)
    if not repo.startswith(REPO_PREFIX):
        return ()
    app = repo[len(REPO_PREFIX) :]
    path = path.split("?", 1)[0]
    if app == "webapp-angular" and path.startswith("/api/"):
        # nginx: prefix stripped, every client header passed on (the tag does not matter)
        forwarded = {k.lower(): v for k, v in headers.items() if k.lower() != "host"}
        return (Call(*API_GATEWAY, "/" + path[len("/api/") :], method, forwarded),)
    if method not in ("GET", "HEAD"):
        return ()  # the Java apps' REST controllers answer GET only (405 before any call)
    target = _java_target(app, tuple(p for p in path.split("/") if p))
    if target is None:
        return ()
    (host, port), called = target
    return (Call(host, port, called, headers=propagated(tag, headers.items())),)


def _java_target(app: str, parts: tuple[str, ...]) -> tuple[tuple[str, int], str] | None:
    """The api-gateway's Feign calls (VehicleController) and the position tracker's
    telemetry call (TelemetryRestService), by the request's path segments."""
    match app, parts:
        case "api-gateway", ("vehicles",):
            return TRACKER, "/vehicles/"
        case "api-gateway", ("vehicles", "driver", vehicle):
            return STAFF, f"/driver/{vehicle}"
        case "api-gateway", (("vehicles" | "history") as what, vehicle):
            return TRACKER, f"/{what}/{vehicle}"
        case "position-tracker", ("vehicles", vehicle):
            return TELEMETRY, f"/vehicles/{vehicle}"
    return None


def answer_status(image: str, statuses: tuple[int, ...]) -> int:
    """What `image` answers once its calls answered `statuses` (in order): the webapp's
    nginx passes the api-gateway's status through; the api-gateway answers 500 when a Feign
    call gets anything but 200; the position tracker leaves the speed out and answers 200."""
    app = image_parts(image)[0].removeprefix(REPO_PREFIX)
    if not statuses:
        return 200
    if app == "webapp-angular":
        return statuses[0]
    if app == "api-gateway":
        return 200 if all(s == 200 for s in statuses) else 500
    return 200
