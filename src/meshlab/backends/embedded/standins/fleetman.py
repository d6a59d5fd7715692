"""Small, deterministic stand-ins for the fleetman images of the Istio course.

Only what the labs observe through the mesh: which version answered (staff-service photos),
failures (`6-bad`), and plausible JSON for the other services. Positions are fixed so two runs
of a lab see the same bytes. The services that call others (webapp, api-gateway,
position-tracker) are in `fleetman_chain`; this module has the data and the leaf services.
"""

from __future__ import annotations

from collections.abc import Callable

from meshlab.backends.embedded.standins.pods import (
    Behaviour,
    Request,
    Response,
    error_response,
    json_response,
)
from meshlab.mesh.image_calls import REPO_PREFIX
from meshlab.records import dataclass

PHOTO_HOST = "https://rac-istio-course-images.s3.amazonaws.com"
PLACEHOLDER_PHOTO = f"{PHOTO_HOST}/placeholder.png"
TIMESTAMP = "2024-05-01T09:00:00.000+00:00"
READ_METHODS = ("GET", "HEAD")


@dataclass(frozen=True)
class Vehicle:
    """One vehicle of the course's fleet: the fixed position, speed, driver and photo the fleetman
    stand-ins report for it."""

    name: str
    lat: float
    lng: float
    speed: float  # mph, as the simulator reports
    driver: str
    photo: int  # n in <PHOTO_HOST>/<n>.jpg


VEHICLES: tuple[Vehicle, ...] = (
    Vehicle("City Truck", 53.38297, -1.46590, 28.4, "Pam Parry", 1),
    Vehicle("Huddersfield Truck A", 53.64582, -1.78497, 41.0, "Duke T. Dog", 2),
    Vehicle("Huddersfield Truck B", 53.64922, -1.77979, 12.7, "Denzil Tulser", 3),
    Vehicle("London Riverside", 51.50553, -0.07540, 19.3, "Herman Boyce", 4),
    Vehicle("Village Truck", 53.33021, -1.64873, 33.6, "June Snell", 5),
)
BY_NAME = {v.name: v for v in VEHICLES}

Route = Callable[[Request], Response]
Router = Callable[[tuple[str, ...]], Route | None]


def position(v: Vehicle, minutes_ago: int = 0) -> dict[str, object]:
    """One position report as position-tracker serves it."""
    step = 0.0007 * minutes_ago  # a short, straight drive back in time
    when = TIMESTAMP if not minutes_ago else f"2024-05-01T08:{60 - minutes_ago:02d}:00.000+00:00"
    return {
        "name": v.name,
        "lat": round(v.lat - step, 5),
        "lng": round(v.lng - step, 5),
        "timestamp": when,
        "speed": v.speed,
    }


def history_of(v: Vehicle) -> list[dict[str, object]]:
    """A short drive, oldest first, ending at the latest position."""
    return [position(v, m) for m in (3, 2, 1, 0)]


def _vehicle_route(name: str, render: Callable[[Vehicle], object]) -> Route:
    """A route answering for one named vehicle, 404 when fleetman has no such vehicle."""

    def route(request: Request) -> Response:
        v = BY_NAME.get(name)
        if v is None:
            return error_response(request, 404, f"no vehicle named {name!r}")
        return json_response(200, render(v))

    return route


def _fixed(status: int, payload: object) -> Route:
    return lambda request: json_response(status, payload)


def _routed(name: str, summary: str, router: Router) -> Behaviour:
    """Path routing first (unknown path → 404), then method (only GET/HEAD → else 405)."""

    def handle(request: Request) -> Response:
        route = router(request.segments)
        if route is None:
            return error_response(request, 404, f"no route for {request.path}")
        if request.method not in READ_METHODS:
            return error_response(
                request, 405, f"{request.method} not supported", (("allow", "GET, HEAD"),)
            )
        return route(request)

    return Behaviour(name, summary, handle)


def staff_service(tag: str) -> Behaviour:
    """Tag 6: per-driver photos; 6-placeholder: one placeholder photo; 6-bad: always 500."""
    name = f"fleetman staff-service:{tag}"
    if tag == "6-bad":

        def broken(request: Request) -> Response:
            return error_response(request, 500, "staff-service 6-bad: simulated failure")

        return Behaviour(name, f"{name}: every request fails with HTTP 500", broken)

    placeholder = tag == "6-placeholder"

    def driver(v: Vehicle) -> dict[str, str]:
        photo = PLACEHOLDER_PHOTO if placeholder else f"{PHOTO_HOST}/{v.photo}.jpg"
        return {"name": v.driver, "photo": photo}

    def router(seg: tuple[str, ...]) -> Route | None:
        return _vehicle_route(seg[1], driver) if len(seg) == 2 and seg[0] == "driver" else None

    photos = "the placeholder photo for every driver" if placeholder else "per-driver photos"
    return _routed(name, f"{name}: GET /driver/{{vehicle}} with {photos}", router)


def vehicle_telemetry(tag: str) -> Behaviour:
    name = f"fleetman vehicle-telemetry:{tag}"

    def telemetry(v: Vehicle) -> float:
        return v.speed  # a bare number: the real service answers a BigDecimal

    def router(seg: tuple[str, ...]) -> Route | None:
        ok = len(seg) == 2 and seg[0] == "vehicles"
        return _vehicle_route(seg[1], telemetry) if ok else None

    return _routed(name, f"{name}: GET /vehicles/{{name}} answers the speed", router)


def position_simulator(tag: str) -> Behaviour:
    name = f"fleetman position-simulator:{tag}"
    status = {"service": "position-simulator", "status": "running", "vehicles": len(VEHICLES)}

    def router(seg: tuple[str, ...]) -> Route | None:
        return _fixed(200, status) if seg == () else None

    return _routed(name, f"{name}: GET / status (a producer in the real app)", router)


BEHAVIOURS: dict[str, Callable[[str], Behaviour]] = {
    REPO_PREFIX + "staff-service": staff_service,
    REPO_PREFIX + "vehicle-telemetry": vehicle_telemetry,
    REPO_PREFIX + "position-simulator": position_simulator,
}
