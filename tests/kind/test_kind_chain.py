"""The chain behind a request, from access-log lines written here in Istio's default TEXT
format (pilot/pkg/model/telemetry_logging.go, EnvoyTextLogFormat) as the sidecars of a
fleetman namespace would print them: probe -> webapp -> api-gateway -> staff-service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from meshlab.backends.base import PodInfo
from meshlab.backends.kind.accesslog import (
    AccessEntry,
    LogSource,
    parse_access_log,
    parse_access_log_line,
)
from meshlab.backends.kind.chain import MAX_DEPTH, MAX_HOPS, Call, chain, service_namer
from meshlab.backends.kind.origins import OriginPoint
from meshlab.backends.kind.trace import id_in_agent, origin_lines
from meshlab.mesh.request import Origin

NS = "meshlab-4-dark-releases-abc123"
SVC = f"{NS}.svc.cluster.local"
PODS = {
    "10.244.0.21": PodInfo("webapp-7d9f8-aaaaa", {"app": "webapp", "version": "original"}, ""),
    "10.244.0.22": PodInfo("api-gateway-7d9f8-bbbbb", {"app": "api-gateway"}, ""),
    "10.244.0.23": PodInfo("position-tracker-7d9f8-ccccc", {"app": "position-tracker"}, ""),
    "10.244.0.24": PodInfo("staff-service-risky-7d9f8-ddddd", {"version": "risky"}, ""),
    "10.244.0.25": PodInfo("vehicle-telemetry-7d9f8-eeeee", {"app": "vehicle-telemetry"}, ""),
}
PROBE, WEBAPP, GATEWAY, TRACKER, STAFF, TELEMETRY = (
    "meshlab-probe",
    *(p.name for p in PODS.values()),
)


def line(
    start: str,
    path: str,
    code: int,
    flags: str,
    agent: str,
    rid: str,
    authority: str,
    upstream: str,
    cluster: str,
    remote: str,
) -> str:
    """One line in Istio's default text format, fields in its order."""
    details = "via_upstream" if flags == "-" else "upstream_reset_before_response_started"
    return (
        f'[2026-12-01T10:00:00.{start}Z] "GET {path} HTTP/1.1" {code} {flags} {details} - "-" '
        f'0 52 31 30 "-" "{agent}" "{rid}" "{authority}" "{upstream}" {cluster} '
        f"10.244.0.9:50412 10.96.100.1:8080 {remote} - default"
    )


def out(
    start: str, path: str, rid: str, host: str, upstream: str, subset: str = "", **kw: object
) -> str:
    port = 80 if host == "fleetman-webapp" else 8080
    code = int(kw.get("code", 200))  # type: ignore[call-overload]
    flags = str(kw.get("flags", "-"))
    cluster = f"outbound|{port}|{subset}|{host}.{SVC}"
    authority = host if port == 80 else f"{host}:{port}"
    agent = str(kw.get("agent", "Java/11.0.4"))
    return line(start, path, code, flags, agent, rid, authority, upstream, cluster, "10.244.0.9:1")


def inb(start: str, path: str, rid: str, host: str, remote: str, code: int = 200) -> str:
    return line(start, path, code, "-", "x", rid, host, "10.244.0.9:8080", "inbound|8080||", remote)


# The logs of one request, rid-1: the probe calls the webapp's /api/..., nginx passes it to
# the api-gateway, which asks the staff-service (risky) for the driver.
LOGS: dict[str, list[str]] = {
    PROBE: [
        out(
            "100",
            "/api/vehicles/driver/City%20Truck",
            "rid-1",
            "fleetman-webapp",
            "10.244.0.21:80",
            agent="meshlab-probe",
        ),
    ],
    WEBAPP: [
        inb(
            "101",
            "/api/vehicles/driver/City%20Truck",
            "rid-1",
            "fleetman-webapp",
            "10.244.0.9:50412",
        ),
        out(
            "102",
            "/vehicles/driver/City%20Truck",
            "rid-1",
            "fleetman-api-gateway",
            "10.244.0.22:8080",
            agent="meshlab-probe",
        ),
    ],
    GATEWAY: [
        inb(
            "103",
            "/vehicles/driver/City%20Truck",
            "rid-1",
            "fleetman-api-gateway:8080",
            "10.244.0.21:39000",
        ),
        out(
            "104",
            "/driver/City%20Truck",
            "rid-1",
            "fleetman-staff-service",
            "10.244.0.24:8080",
            "risky",
        ),
    ],
    STAFF: [
        inb(
            "105",
            "/driver/City%20Truck",
            "rid-1",
            "fleetman-staff-service:8080",
            "10.244.0.22:40000",
        ),
    ],
}


def entries(logs: Mapping[str, Sequence[str]]) -> dict[str, list[AccessEntry]]:
    return {pod: parse_access_log("\n".join(lines)) for pod, lines in logs.items()}


def pod_at(host: str) -> PodInfo | None:
    return PODS.get(host.rsplit(":", 1)[0])


SERVICE = service_namer(
    [f"fleetman-{n}.{SVC}" for n in ("webapp", "api-gateway", "staff-service")],
    NS,
    lambda text: text.replace(f".{NS}.svc.", ".default.svc."),
)


def hops_of(logs: Mapping[str, Sequence[str]], rid: str = "rid-1") -> list[tuple[object, ...]]:
    parsed = entries(logs)
    (root,) = [e for e in parsed[PROBE] if e.request_id == rid]
    outbound = {
        pod: [e for e in lines if not e.inbound and e.request_id == rid]
        for pod, lines in parsed.items()
        if pod != PROBE
    }
    call = Call(root, None, pod_at(root.upstream_host or ""))
    return [
        (h.service.split(".")[0], h.pod, h.status, h.response_flags, h.caller, h.depth, h.path)
        for h in chain(call, outbound, pod_at, SERVICE)
    ]


def test_text_lines_parse_with_direction_caller_and_path() -> None:
    (outbound,) = parse_access_log("\n".join(LOGS[GATEWAY][1:]))
    assert not outbound.inbound
    assert (outbound.request_id, outbound.response_code, outbound.path) == (
        "rid-1",
        200,
        "/driver/City%20Truck",
    )
    assert outbound.authority == "fleetman-staff-service:8080"
    assert outbound.upstream_cluster == f"outbound|8080|risky|fleetman-staff-service.{SVC}"
    assert outbound.user_agent == "Java/11.0.4"
    assert outbound.start == "2026-12-01T10:00:00.104Z"
    inbound = parse_access_log_line(LOGS[STAFF][0])
    assert inbound is not None
    assert inbound.inbound
    assert inbound.downstream_remote == "10.244.0.22:40000"


def test_a_line_printed_twice_counts_once() -> None:
    """A proxy told to log by both the mesh config and a Telemetry object."""
    assert len(parse_access_log("\n".join(LOGS[PROBE] * 2))) == 1


def test_three_hops_in_call_order() -> None:
    assert hops_of(LOGS) == [
        ("fleetman-webapp", WEBAPP, 200, "-", None, 1, "/api/vehicles/driver/City%20Truck"),
        ("fleetman-api-gateway", GATEWAY, 200, "-", WEBAPP, 2, "/vehicles/driver/City%20Truck"),
        ("fleetman-staff-service", STAFF, 200, "-", GATEWAY, 3, "/driver/City%20Truck"),
    ]


def test_services_are_told_in_the_labs_namespace() -> None:
    parsed = entries(LOGS)
    root = parsed[PROBE][0]
    (hop, *_) = chain(Call(root, None, pod_at("10.244.0.21")), {}, pod_at, SERVICE)
    assert hop.service == "fleetman-webapp.default.svc.cluster.local"
    assert hop.labels == {"app": "webapp", "version": "original"}


def test_a_failure_deeper_in_the_chain_names_the_hop_and_its_caller() -> None:
    """No pod answers the staff-service call (503 UH): the hop has no pod, the caller is the
    api-gateway, and the webapp's own answer is what the probe saw."""
    logs = {**LOGS}
    logs[GATEWAY] = [
        LOGS[GATEWAY][0],
        out(
            "104",
            "/driver/City%20Truck",
            "rid-1",
            "fleetman-staff-service",
            "-",
            "risky",
            code=503,
            flags="UH",
        ),
    ]
    logs[STAFF] = []
    assert hops_of(logs)[2] == (
        "fleetman-staff-service",
        None,
        503,
        "UH",
        GATEWAY,
        3,
        "/driver/City%20Truck",
    )


def test_without_propagation_the_chain_ends_where_the_id_was_dropped() -> None:
    """A `6-no-header-propagation` api-gateway calls staff-service without x-request-id:
    its sidecar makes one up, so that call is not this request's and is not reported."""
    logs = {**LOGS}
    logs[GATEWAY] = [
        LOGS[GATEWAY][0],
        out(
            "104",
            "/driver/City%20Truck",
            "5f1c-made-up",
            "fleetman-staff-service",
            "10.244.0.24:8080",
            "safe",
        ),
    ]
    assert [h[1] for h in hops_of(logs)] == [WEBAPP, GATEWAY]


def test_a_pod_called_twice_keeps_each_visits_calls_under_it() -> None:
    """The api-gateway asks the position-tracker twice; each tracker visit asks the
    vehicle-telemetry once: the second telemetry call belongs to the second visit."""
    logs = {
        PROBE: [
            out(
                "100",
                "/vehicles/",
                "rid-1",
                "fleetman-api-gateway",
                "10.244.0.22:8080",
                agent="meshlab-probe",
            )
        ],
        GATEWAY: [
            out("101", "/vehicles/A", "rid-1", "fleetman-position-tracker", "10.244.0.23:8080"),
            out("110", "/vehicles/B", "rid-1", "fleetman-position-tracker", "10.244.0.23:8080"),
        ],
        TRACKER: [
            out("102", "/vehicles/A", "rid-1", "fleetman-vehicle-telemetry", "10.244.0.25:8080"),
            out("111", "/vehicles/B", "rid-1", "fleetman-vehicle-telemetry", "10.244.0.25:8080"),
        ],
    }
    assert [(h[0], h[5], h[6]) for h in hops_of(logs)] == [
        ("fleetman-api-gateway", 1, "/vehicles/"),
        ("fleetman-position-tracker", 2, "/vehicles/A"),
        ("fleetman-vehicle-telemetry", 3, "/vehicles/A"),
        ("fleetman-position-tracker", 2, "/vehicles/B"),
        ("fleetman-vehicle-telemetry", 3, "/vehicles/B"),
    ]


def test_hops_are_capped_in_number_and_depth() -> None:
    """Lines from a hostile or looping app cannot grow an outcome without bound."""
    pods = {f"10.0.0.{i}": PodInfo(f"pod-{i}", {}, "") for i in range(1, 90)}
    deep = {
        f"pod-{i}": [
            parse_access_log_line(
                out(f"{100 + i:03d}", "/", "r", "fleetman-api-gateway", f"10.0.0.{i + 1}:8080")
            )
        ]
        for i in range(1, 20)
    }
    root = parse_access_log_line(out("100", "/", "r", "fleetman-api-gateway", "10.0.0.1:8080"))
    assert root is not None
    deep_hops = chain(
        Call(root, None, pods["10.0.0.1"]),
        {k: [e for e in v if e] for k, v in deep.items()},
        lambda host: pods.get(host.rsplit(":", 1)[0]),
        SERVICE,
    )
    assert max(h.depth for h in deep_hops) == MAX_DEPTH
    wide = [
        parse_access_log_line(
            out(f"{100 + i:03d}", "/", "r", "fleetman-api-gateway", f"10.0.0.{i + 1}:8080")
        )
        for i in range(1, 80)
    ]
    wide_hops = chain(
        Call(root, None, pods["10.0.0.1"]),
        {"pod-1": [e for e in wide if e]},
        lambda host: pods.get(host.rsplit(":", 1)[0]),
        SERVICE,
    )
    assert len(wide_hops) == MAX_HOPS


def test_a_call_cycle_ends() -> None:
    """Two pods calling each other with one id at one instant (no order to go by): the
    rebuilding ends, and no line becomes a hop twice."""
    pods = {"10.0.0.1": PodInfo("a", {}, ""), "10.0.0.2": PodInfo("b", {}, "")}
    a_calls_b = parse_access_log_line(out("100", "/", "r", "fleetman-webapp", "10.0.0.2:80"))
    b_calls_a = parse_access_log_line(out("100", "/", "r", "fleetman-webapp", "10.0.0.1:80"))
    root = parse_access_log_line(out("100", "/", "r", "fleetman-webapp", "10.0.0.1:80"))
    assert a_calls_b is not None
    assert b_calls_a is not None
    assert root is not None
    hops = chain(
        Call(root, None, pods["10.0.0.1"]),
        {"a": [a_calls_b], "b": [b_calls_a]},
        lambda host: pods.get(host.rsplit(":", 1)[0]),
        SERVICE,
    )
    assert [h.pod for h in hops] == ["a"]  # the loop hangs off no call of the origin's


@pytest.mark.parametrize(
    ("authority", "cluster", "expected"),
    [
        (
            "fleetman-webapp",
            f"outbound|80||fleetman-webapp.{SVC}",
            "fleetman-webapp.default.svc.cluster.local",
        ),
        (
            "fleetman-api-gateway:8080",
            "inbound|8080||",
            "fleetman-api-gateway.default.svc.cluster.local",
        ),
        (f"fleetman-webapp.{NS}", "-", "fleetman-webapp.default.svc.cluster.local"),
        ("fleetman.com", "-", "fleetman.com"),  # no Service of the lab: the host as called
        ("fleetman.com:8080", "-", "fleetman.com"),
    ],
)
def test_service_names(authority: str, cluster: str, expected: str) -> None:
    entry = AccessEntry(
        "r", 200, "-", None, None if cluster == "-" else cluster, authority=authority
    )
    assert SERVICE(entry) == expected


# --- which line is the origin's own call --------------------------------------------------


def _entry(
    rid: str, agent: str = "x", cluster: str = "outbound|80||w", remote: str = ""
) -> AccessEntry:
    return AccessEntry(
        rid, 200, "-", "10.244.0.21:80", cluster, user_agent=agent, downstream_remote=remote
    )


def test_the_gateway_line_is_found_by_the_user_agent() -> None:
    """The gateway replaced the probe's id: its line carries the id in the User-Agent."""
    gateway = LogSource("istio-system", "istio-ingressgateway-1")
    point = OriginPoint(
        Origin("browser"), "meshlab-probe-plain", "probe", (), (gateway,), via_user_agent=True
    )
    logs = {
        gateway: [_entry("new-id", "meshlab-probe/rid-1"), _entry("other", "curl/8")],
        LogSource(NS, WEBAPP): [_entry("new-id", "meshlab-probe/rid-1", "inbound|80||")],
    }
    found = origin_lines(point, logs, {"rid-1"})
    assert found["rid-1"] == (gateway, logs[gateway][0])
    assert id_in_agent("meshlab-probe/rid-1") == "rid-1"
    assert id_in_agent("Mozilla/5.0") is None


def test_without_a_sidecar_the_origin_is_seen_by_the_callees_sidecar() -> None:
    point = OriginPoint(Origin("no-sidecar"), "meshlab-probe-plain", "probe", (), (), "10.244.0.30")
    webapp = LogSource(NS, WEBAPP)
    served = _entry("rid-1", cluster="inbound|80||", remote="10.244.0.30:51000")
    logs = {
        webapp: [_entry("rid-1"), served],  # its own outbound call is not the origin's
        LogSource(NS, GATEWAY): [_entry("rid-1", cluster="inbound|80||", remote="10.244.0.21:1")],
    }
    assert origin_lines(point, logs, {"rid-1"}) == {"rid-1": (webapp, served)}
