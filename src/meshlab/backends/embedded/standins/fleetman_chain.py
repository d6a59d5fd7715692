"""The fleetman services that call others, as the course's images do (facts from the course
repository's sources, `src/6/...`):

- webapp-angular: nginx (`nginx.conf`): `location /api/` → `proxy_pass
  http://fleetman-api-gateway:8080/` (prefix stripped) with `Host fleetman-api-gateway`, every
  other request header passed on; any other path serves the page (`try_files ... /index.html`).
- api-gateway (`VehicleController`, `RemotePositionMicroserviceCalls`,
  `RemoteStaffMicroserviceCalls`, URLs from `application-production-microservice.properties`).
- position-tracker asks vehicle-telemetry for a speed (`TelemetryRestService`); a failure only
  leaves the speed out (`ExternalVehicleTelemetryService` → TelemetryServiceUnavailableException).

Calls leave through the pod's sidecar (`egress.Calls`); each response lists them in
`x-meshlab-hops`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from http import HTTPStatus
from urllib.parse import quote

from meshlab.backends.embedded.standins.egress import (
    TIMED_OUT,
    Calls,
    EgressClient,
    Reply,
    client_for,
)
from meshlab.backends.embedded.standins.fleetman import (
    BY_NAME,
    READ_METHODS,
    VEHICLES,
    history_of,
    position,
)
from meshlab.backends.embedded.standins.pods import (
    Behaviour,
    Request,
    Response,
    error_response,
    json_response,
)
from meshlab.mesh.image_calls import REPO_PREFIX, propagated

# Where each app sends its calls: authority as called (Host unless the app sets its own).
API_GATEWAY = "fleetman-api-gateway:8080"  # nginx proxy_pass
API_GATEWAY_HOST = "fleetman-api-gateway"  # nginx proxy_set_header Host
TRACKER = "fleetman-position-tracker.default.svc.cluster.local:8080"  # position-tracker-url
STAFF = "fleetman-staff-service.default.svc.cluster.local:8080"  # staff-service-url
TELEMETRY = "fleetman-vehicle-telemetry:8080"  # the tracker's telemetry-url

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding"}
    | {"upgrade", "host", "content-length"}
)
NGINX_SETS = frozenset({"x-real-ip", "x-forwarded-for", "x-forwarded-proto"})
PEER = "127.0.0.1"  # nginx's $remote_addr: the pod's sidecar, on loopback

ClientSource = Callable[[Request], EgressClient]
Route = Callable[[Request, Calls], Response]


def propagated_headers(tag: str, headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The request headers a fleetman Java image of `tag` copies onto its downstream calls
    (the rule lives with the other image facts: mesh/image_calls.py `propagated`)."""
    return list(propagated(tag, headers).items())


def nginx_headers(request: Request) -> list[tuple[str, str]]:
    """What the webapp's nginx sends upstream: every client header (whatever the image tag)
    but hop-by-hop ones, plus its X-Real-IP / X-Forwarded-* lines."""
    sent = [(k, v) for k, v in request.headers if k not in HOP_BY_HOP and k not in NGINX_SETS]
    xff = request.header("x-forwarded-for")
    sent += [
        ("x-real-ip", PEER),
        ("x-forwarded-for", f"{xff}, {PEER}" if xff else PEER),
        ("x-forwarded-proto", "http"),
    ]
    return sent


def _calling(
    name: str,
    summary: str,
    downstream: tuple[str, ...],
    client: EgressClient | None,
    router: Callable[[Request], Route | None],
    read_only: bool = True,
) -> Behaviour:
    """A behaviour whose routes may call other services; the calls go into x-meshlab-hops.
    Its `downstream` is never empty: it is how a run knows the pod sends (image_calls.py's
    `calls_anyone` agrees, tested), and keeps the pod's sidecar."""
    if not downstream:
        raise ValueError(f"{name}: a calling behaviour names what it may call")
    # each pod calls out through its own sidecar: the client of the pod being served
    source: ClientSource = (
        (lambda request: client) if client is not None else (lambda r: client_for(r.pod.egress))
    )

    def handle(request: Request) -> Response:
        route = router(request)
        if route is None:
            return error_response(request, 404, f"no route for {request.path}")
        if read_only and request.method not in READ_METHODS:
            return error_response(
                request, 405, f"{request.method} not supported", (("allow", "GET, HEAD"),)
            )
        calls = Calls(source(request))
        response = route(request, calls)
        return replace(response, headers=(*response.headers, *calls.header()))

    return Behaviour(name, summary, handle, downstream)


def _quoted(name: str) -> str:
    return quote(name, safe="")  # Feign expands a path variable percent-encoded


def _feign_failure(request: Request, authority: str, path: str, reply: Reply) -> Response:
    """Spring Boot's 500 when a Feign call fails, with Feign's own wording of the cause."""
    url = f"http://{authority}{path}"
    if reply.status is None:
        cause = f"{reply.error} executing GET {url}"  # feign.RetryableException
    else:
        try:
            phrase = HTTPStatus(reply.status).phrase
        except ValueError:
            phrase = ""
        cause = f"[{reply.status} {phrase}] during [GET] to [{url}]"  # feign.FeignException
    return error_response(request, 500, cause)


def webapp(tag: str, client: EgressClient | None = None) -> Behaviour:
    """nginx: `/api/...` proxied to the api-gateway, any other path the (variant's) page."""
    experimental = "experimental" in tag
    name = f"fleetman webapp-angular:{tag}"
    variant = "experimental" if experimental else "original"
    title = "Fleet Management (experimental)" if experimental else "Fleet Management"
    page = (
        f'<!doctype html><html data-meshlab-variant="{variant}"><head>'
        f'<meta name="meshlab-variant" content="{variant}"><title>{title}</title></head>'
        f'<body style="margin:0"><header style="background:{"#c0392b" if experimental else "#222"};'
        f'color:#fff;padding:8px"><h1>{title}</h1></header>'
        f"<p>meshlab stand-in for {html.escape(name)}</p></body></html>\n"  # a tag is user input
    ).encode()

    def serve_page(request: Request, calls: Calls) -> Response:
        if request.method not in READ_METHODS:
            return error_response(request, 405, f"{request.method} not allowed")
        return Response(200, page, "text/html; charset=utf-8")

    def proxy(request: Request, calls: Calls) -> Response:
        target = "/" + request.target[len("/api/") :]
        reply = calls.get(
            API_GATEWAY,
            target,
            nginx_headers(request),
            host_header=API_GATEWAY_HOST,
            method=request.method,
            body=request.body,
        )
        if reply.status is None:  # nginx: 504 when the upstream timed out, else 502
            status = 504 if reply.error == TIMED_OUT else 502
            phrase = HTTPStatus(status).phrase
            text = f"<html><head><title>{status} {phrase}</title></head><body>"
            text += f"<center><h1>{status} {phrase}</h1></center><hr><center>nginx</center>"
            return Response(status, (text + "</body></html>\n").encode(), "text/html")
        content_type = reply.headers.get("content-type", "application/octet-stream")
        return Response(reply.status, reply.body, content_type)

    def router(request: Request) -> Route | None:
        return proxy if request.path.startswith("/api/") else serve_page

    look = "a visibly different experimental page" if experimental else "the page"
    summary = (
        f"{name}: /api/... proxied to {API_GATEWAY_HOST} (prefix stripped, all headers "
        f"forwarded); any other path serves {look}"
    )
    return _calling(name, summary, (API_GATEWAY,), client, router, read_only=False)


def api_gateway(tag: str, client: EgressClient | None = None) -> Behaviour:
    """The REST facade: everything comes from position-tracker or staff-service."""
    name = f"fleetman api-gateway:{tag}"
    home = b"<p>Fleetman API Gateway (meshlab stand-in)</p>"

    def forward(authority: str, path: str, shape: Callable[[bytes], bytes] | None = None) -> Route:
        def route(request: Request, calls: Calls) -> Response:
            reply = calls.get(authority, path, propagated_headers(tag, request.headers))
            if reply.status is None and path == "/vehicles/":
                # getAllPositions() answers [] when the tracker cannot be reached at all
                return json_response(200, [])
            if reply.status != 200:
                return _feign_failure(request, authority, path, reply)
            try:
                body = shape(reply.body) if shape else reply.body
            except (ValueError, TypeError, KeyError):  # Jackson could not read the answer
                return error_response(request, 500, f"unreadable answer from {authority}{path}")
            return Response(200, body, "application/json")

        return route

    def lat_longs(body: bytes) -> bytes:
        """getHistoryFor: only lat/lng of each position, newest first."""
        history = json.loads(body)
        points = [{"lat": p["lat"], "lng": p["lng"]} for p in reversed(history)]
        return json.dumps(points, separators=(",", ":")).encode()

    def router(request: Request) -> Route | None:
        match request.segments:
            case ():
                return lambda request, calls: Response(200, home, "text/html;charset=UTF-8")
            case ("vehicles",):
                return forward(TRACKER, "/vehicles/")
            case ("vehicles", "driver", vehicle):
                return forward(STAFF, f"/driver/{_quoted(vehicle)}")
            case ("vehicles", vehicle):
                return forward(TRACKER, f"/vehicles/{_quoted(vehicle)}")
            case ("history", vehicle):
                return forward(TRACKER, f"/history/{_quoted(vehicle)}", lat_longs)
        return None

    summary = (
        f"{name}: GET /vehicles/, /vehicles/{{name}}, /history/{{name}} → "
        f"fleetman-position-tracker; /vehicles/driver/{{name}} → fleetman-staff-service "
        f"/driver/{{name}}; {_propagation(tag)}"
    )
    return _calling(name, summary, (TRACKER, STAFF), client, router)


def position_tracker(tag: str, client: EgressClient | None = None) -> Behaviour:
    """Positions; the speed of one vehicle comes from vehicle-telemetry."""
    name = f"fleetman position-tracker:{tag}"

    def fixed(payload: object) -> Route:
        return lambda request, calls: json_response(200, payload)

    def latest(vehicle: str) -> Route:
        def route(request: Request, calls: Calls) -> Response:
            v = BY_NAME.get(vehicle)
            if v is None:
                return error_response(request, 404, f"no vehicle named {vehicle!r}")
            found = position(v)
            del found["speed"]
            path = f"/vehicles/{_quoted(v.name)}"
            reply = calls.get(TELEMETRY, path, propagated_headers(tag, request.headers))
            if (speed := _speed(reply)) is not None:
                found["speed"] = speed
            return json_response(200, found)

        return route

    def history(vehicle: str) -> Route:
        def route(request: Request, calls: Calls) -> Response:
            v = BY_NAME.get(vehicle)
            if v is None:
                return error_response(request, 404, f"no vehicle named {vehicle!r}")
            return json_response(200, history_of(v))

        return route

    def router(request: Request) -> Route | None:
        match request.segments:
            case ("vehicles",):
                return fixed([position(v) for v in VEHICLES])
            case ("vehicles", vehicle):
                return latest(vehicle)
            case ("history", vehicle):
                return history(vehicle)
        return None

    summary = (
        f"{name}: GET /vehicles/, /history/{{name}}; /vehicles/{{name}} asks "
        f"fleetman-vehicle-telemetry /vehicles/{{name}} for the speed (left out if that "
        f"fails); {_propagation(tag)}"
    )
    return _calling(name, summary, (TELEMETRY,), client, router)


def _speed(reply: Reply) -> float | None:
    """vehicle-telemetry answers a bare number (a BigDecimal); anything else: no speed."""
    if reply.status != 200:
        return None
    try:
        value = json.loads(reply.body)
    except ValueError:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else None


def _propagation(tag: str) -> str:
    if "no-header-propagation" in tag:
        return "propagates no request headers"
    return "propagates x-* request headers"


BEHAVIOURS: dict[str, Callable[[str], Behaviour]] = {
    REPO_PREFIX + "webapp-angular": webapp,
    REPO_PREFIX + "api-gateway": api_gateway,
    REPO_PREFIX + "position-tracker": position_tracker,
}
