"""The versioned app graph of a whole chain (`report.traffic`, `report.chain`): built from
hand-made outcomes whose hops are what the embedded backend reports for the fleetman chain
(browser -> webapp -> api-gateway -> staff-service), drawn as SVG, said in the terminal."""

from __future__ import annotations

import json
import random
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

import markdown
import pytest

from meshlab.backends.base import Hop, Outcome
from meshlab.backends.fake import FakeBackend
from meshlab.mesh.request import Origin, ProbeRequest
from meshlab.pipeline import prepare, run_check
from meshlab.report.chain import chain_graph_svg
from meshlab.report.model import (
    CheckReport,
    RunReport,
    SplitCheckReport,
    TrafficGraph,
    check_report,
)
from meshlab.report.page import render_page
from meshlab.report.text import render_text
from meshlab.report.traffic import (
    MAX_VERSIONS,
    TracedMesh,
    TrafficTally,
    traffic_graph,
    traffic_summary,
)

SVG = "{http://www.w3.org/2000/svg}"
NS = "default.svc.cluster.local"
BROWSER = ProbeRequest(
    "http://fleetman.com/api/vehicles/driver/City%20Truck", origin=Origin("browser")
)
WEBAPP, GATEWAY, STAFF = (f"fleetman-{s}.{NS}" for s in ("webapp", "api-gateway", "staff-service"))


def pod(app: str, version: str | None) -> tuple[str, dict[str, str]]:
    labels = {"app": app, **({"version": version} if version else {})}
    return f"{app}-{version or 'v'}-5d8f7c9b6-0", labels


def chain(
    webapp: str = "original",
    staff: str | None = "safe",
    status: int | None = 200,
    flags: str = "-",
    gateway_status: int | None = 200,
) -> Outcome:
    """One request from a browser for a driver: webapp -> api-gateway -> staff-service;
    `staff=None`: no staff pod answered (`status`, `flags` say how); `gateway_status`
    not 200 and no pod: the chain broke at depth 2."""
    web_pod, web_labels = pod("webapp", webapp)
    gw_pod, gw_labels = pod("api-gateway", None)
    hops = [Hop(WEBAPP, web_pod, web_labels, 200, "-", None, 1, "/api/vehicles/driver/x")]
    if gateway_status != 200:
        hops.append(Hop(GATEWAY, None, {}, gateway_status, flags, web_pod, 2, "/vehicles/x"))
        return Outcome(502, web_pod, web_labels, hops=tuple(hops))
    hops.append(Hop(GATEWAY, gw_pod, gw_labels, status, "-", web_pod, 2, "/vehicles/driver/x"))
    staff_pod, staff_labels = pod("staff-service", staff) if staff else (None, {})
    hops.append(Hop(STAFF, staff_pod, staff_labels, status, flags, gw_pod, 3, "/driver/x"))
    return Outcome(200, web_pod, web_labels, hops=tuple(hops))


def canary(n_original: int = 91, n_experimental: int = 9) -> TrafficGraph:
    outcomes = [chain("original", "safe")] * n_original
    outcomes += [chain("experimental", "safe")] * n_experimental
    return traffic_graph(outcomes, BROWSER)


def edge_between(graph: TrafficGraph, source: str, target: str) -> Mapping[str, object]:
    (edge,) = [e for e in graph.edges if e.source == source and e.target == target]
    return edge.model_dump()


def svg(text: str) -> ET.Element:
    return ET.fromstring(text)  # the picture must be well-formed XML on its own


def data_nodes(root: ET.Element, kind: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("data-node") == kind]


def texts(root: ET.Element) -> list[str]:
    return [e.text or "" for e in root.iter(f"{SVG}text")]


# ------------------------------------------------------------------------------------------
# The graph


def test_a_three_hop_chain_has_a_node_per_app_version_and_an_edge_per_call() -> None:
    graph = canary()
    assert graph.origin == "browser via istio-ingressgateway"
    assert graph.requests == 100
    assert graph.depth == 3
    versions = {(n.app, n.version): n for n in graph.nodes if n.kind == "version"}
    assert set(versions) == {
        ("webapp", "original"),
        ("webapp", "experimental"),
        ("api-gateway", "latest"),  # no version label: Istio's "latest"
        ("staff-service", "safe"),
    }
    assert versions[("api-gateway", "latest")].depth == 2
    assert versions[("staff-service", "safe")].requests == 100
    assert edge_between(graph, "origin", "vapp:webapp:original")["requests"] == 91
    assert edge_between(graph, "origin", "vapp:webapp:experimental")["requests"] == 9
    web_to_gateway = edge_between(graph, "vapp:webapp:experimental", "vapp:api-gateway:latest")
    assert web_to_gateway["requests"] == 9
    assert web_to_gateway["caller_version"] == "experimental"
    assert web_to_gateway["service"] == GATEWAY
    assert edge_between(graph, "vapp:api-gateway:latest", "vapp:staff-service:safe") == {
        "source": "vapp:api-gateway:latest",
        "target": "vapp:staff-service:safe",
        "caller_app": "api-gateway",
        "caller_version": "latest",
        "callee_app": "staff-service",
        "callee_version": "safe",
        "service": STAFF,
        "requests": 100,
        "errors": {},
        "flags": {},
    }


def test_the_summary_reads_the_chain_with_each_apps_versions() -> None:
    assert traffic_summary(canary()) == [
        "  chain: browser -> webapp [original 91%, experimental 9%] -> api-gateway"
        " -> staff-service [safe 100%]"
    ]


def test_a_failure_at_depth_two_is_an_unanswered_node_with_its_flags() -> None:
    outcomes = [chain()] * 8 + [chain(gateway_status=503, flags="UF")] * 2
    graph = traffic_graph(outcomes, BROWSER)
    (broken,) = [n for n in graph.nodes if n.kind == "unanswered"]
    assert (broken.app, broken.depth, broken.requests) == ("fleetman-api-gateway", 2, 2)
    edge = edge_between(graph, "vapp:webapp:original", broken.id)
    assert edge["errors"] == {"HTTP 503": 2}
    assert edge["flags"] == {"UF": 2}
    assert edge["callee_app"] == ""
    lines = traffic_summary(graph)
    # the calls no pod answered count under the app that answered that Service otherwise
    assert lines == [
        "! chain: browser -> webapp [original 100%] -> api-gateway"
        " [latest 80%, no pod 20%; 20% failed: HTTP 503 UF] -> staff-service [safe 100%]"
    ]


def test_a_pod_answering_500_is_an_error_of_its_edge_and_no_response_is_one_too() -> None:
    outcomes = [chain(staff="risky", status=500)] * 3 + [chain(staff=None, status=None)]
    graph = traffic_graph(outcomes, BROWSER)
    risky = edge_between(graph, "vapp:api-gateway:latest", "vapp:staff-service:risky")
    assert risky["errors"] == {"HTTP 500": 3}
    (line,) = traffic_summary(graph)
    assert line.startswith("! chain: ")
    assert "100% failed: HTTP 500, no response" in line


def test_without_propagation_every_call_goes_to_safe() -> None:
    """The experimental webapp's header never reaches staff-service: all of it goes to safe."""
    graph = traffic_graph([chain("experimental", "safe")] * 50, BROWSER)
    assert not [n for n in graph.nodes if n.version == "risky"]
    assert traffic_summary(graph) == [
        "  chain: browser -> webapp [experimental 100%] -> api-gateway -> staff-service [safe 100%]"
    ]


def test_a_branching_chain_is_one_line_per_path_placed_by_depth() -> None:
    """api-gateway calls position-tracker, which calls vehicle-telemetry, then staff-service:
    a hop's caller is the nearest hop one level up in the depth-first list."""
    gw_pod, gw_labels = pod("api-gateway", None)
    pt_pod, pt_labels = pod("position-tracker", None)
    vt_pod, vt_labels = pod("vehicle-telemetry", None)
    st_pod, st_labels = pod("staff-service", "safe")
    hops = (
        Hop(GATEWAY, gw_pod, gw_labels, 200, "-", None, 1),
        Hop("fleetman-position-tracker:8080", pt_pod, pt_labels, 200, "-", gw_pod, 2),
        Hop("fleetman-vehicle-telemetry:8080", vt_pod, vt_labels, 200, "-", pt_pod, 3),
        Hop(STAFF, st_pod, st_labels, 200, "-", gw_pod, 2),
    )
    graph = traffic_graph([Outcome(200, gw_pod, gw_labels, hops=hops)] * 4)
    assert edge_between(graph, "vapp:api-gateway:latest", "vapp:staff-service:safe")
    assert edge_between(graph, "vapp:position-tracker:latest", "vapp:vehicle-telemetry:latest")
    assert traffic_summary(graph) == [
        "  chain: probe -> api-gateway -> position-tracker -> vehicle-telemetry",
        "  chain: probe -> api-gateway -> staff-service [safe 100%]",
    ]


def test_outcomes_without_hops_are_one_call_to_the_requested_host() -> None:
    """Backends that do not trace the chain: the depth-1 answer is the whole graph."""
    staff_pod, labels = pod("staff-service", "risky")
    request = ProbeRequest("http://fleetman-staff-service:8080/driver/x")
    graph = traffic_graph([Outcome(200, staff_pod, labels), Outcome(503, None, {}, "NC")], request)
    assert graph.origin == "meshlab probe"
    assert graph.depth == 1
    assert {e.service for e in graph.edges} == {"fleetman-staff-service"}
    assert sorted(e.requests for e in graph.edges) == [1, 1]


def test_hops_whose_caller_is_missing_are_left_out_without_a_crash() -> None:
    staff_pod, labels = pod("staff-service", "safe")
    hops = (Hop(STAFF, staff_pod, labels, 200, "-", "nobody", 3),)  # depth 3 after nothing
    graph = traffic_graph([Outcome(200, staff_pod, labels, hops=hops)])
    assert graph.requests == 1
    assert graph.edges == []
    assert traffic_summary(graph) == []


def test_two_hundred_pods_stay_a_bounded_graph_and_page() -> None:
    """Aggregated by app and version: 200 pods of one version are one node; 200 versions of
    an app fold into MAX_VERSIONS nodes; the picture stays small."""
    same = [Outcome(200, f"staff-{i}-abc-0", {"app": "staff", "version": "v1"}) for i in range(200)]
    graph = traffic_graph(same * 5)
    (node,) = [n for n in graph.nodes if n.kind == "version"]
    assert (node.pods, node.requests) == (200, 1000)

    many = [
        Outcome(200, f"staff-{i}-abc-0", {"app": "staff", "version": f"v{i}"}) for i in range(200)
    ]
    tally = TrafficTally()
    for outcome in many * 5:
        tally.add(outcome)
    graph = tally.graph()
    versions = [n for n in graph.nodes if n.kind == "version"]
    assert len(versions) == MAX_VERSIONS
    assert graph.folded == 200 - (MAX_VERSIONS - 1)
    assert sum(n.requests for n in versions) == 1000
    assert next(n for n in versions if n.version == "other versions").pods == 193
    picture = chain_graph_svg(graph)
    assert len(picture) < 20_000
    assert len(graph.model_dump_json()) < 10_000


# ------------------------------------------------------------------------------------------
# The picture


def test_the_svg_of_a_chain_is_well_formed_with_its_nodes_and_edges() -> None:
    graph = traffic_graph([chain()] * 8 + [chain(gateway_status=503, flags="UF")] * 2, BROWSER)
    root = svg(chain_graph_svg(graph, "c1"))
    assert root.get("data-meshlab") == "chain-graph"
    assert len(data_nodes(root, "origin")) == 1
    drawn = {(v.get("data-app"), v.get("data-version")) for v in data_nodes(root, "version")}
    assert drawn == {
        ("webapp", "original"),
        ("api-gateway", "latest"),
        ("staff-service", "safe"),
    }
    assert [u.get("data-service") for u in data_nodes(root, "unanswered")] == [
        "fleetman-api-gateway"
    ]
    edges = [e for e in root.iter() if e.get("data-edge") == "call"]
    assert {(e.get("data-source"), e.get("data-target")) for e in edges} == {
        (e.source, e.target) for e in graph.edges
    }
    failing = [e for e in edges if e.get("data-errors") != "0"]
    assert len(failing) == 1
    assert failing[0].get("stroke") == "#e0403a"  # red, as Kiali draws failing edges
    assert failing[0].get("marker-end") == "url(#c1-arrow-red)"
    words = texts(root)
    assert "80.0% · 8 req" in words  # webapp's calls to the api-gateway Service, answered
    assert "20.0% · 2 req" in words
    assert "100.0% err" in words
    assert "no pod answered" in words


def test_an_app_in_several_versions_is_a_box_and_a_lone_version_is_not() -> None:
    root = svg(chain_graph_svg(canary()))
    assert [b.get("data-app") for b in data_nodes(root, "box")] == ["webapp"]
    words = texts(root)
    assert "api-gateway" in words
    assert "version latest" in words


def test_names_from_the_lab_cannot_break_the_picture() -> None:
    hostile = {"app": "<script>alert(1)</script>&" + "x" * 300, "version": '"><b>'}
    graph = traffic_graph([Outcome(200, "p-1-0", hostile)])
    text = chain_graph_svg(graph)
    root = svg(text)
    assert "<script>" not in text
    assert all(len(t) < 80 for t in texts(root))


# ------------------------------------------------------------------------------------------
# The report: JSON, page and terminal


def report_with(traffic: TrafficGraph | None, kind: str = "split") -> RunReport:
    check: dict[str, object] = {
        "name": "dark release",
        "kind": kind,
        "passed": False,
        "outcome": "fail",
        "requests": 10,
        "message": "dark release: FAIL",
    }
    if traffic is not None:
        check["traffic"] = traffic.model_dump(mode="json")
    return RunReport.model_validate({"lab": "4-dark-releases", "checks": [check]})


def test_reports_without_traffic_still_load_and_traffic_round_trips() -> None:
    old = RunReport.model_validate_json(
        json.dumps({"lab": "2-traffic", "checks": [{"name": "c", "kind": "split", "buckets": []}]})
    )
    assert old.checks[0].traffic is None
    report = report_with(canary())
    again = RunReport.model_validate_json(report.model_dump_json())
    assert again.checks[0].traffic == canary()
    assert isinstance(again.checks[0], SplitCheckReport)
    assert isinstance(report_with(canary(), kind="status").checks[0], CheckReport)


@pytest.mark.parametrize("kind", ["split", "status"])
def test_the_page_draws_the_whole_chain_when_there_was_one(kind: str) -> None:
    page = render_page(report_with(canary(), kind))
    assert "### The whole chain" in page
    assert 'data-meshlab="chain-graph"' in page
    assert "### The whole chain" not in render_page(report_with(None, kind))


def test_the_chain_figure_survives_markdown_as_raw_svg() -> None:
    rendered = markdown.markdown(
        render_page(report_with(canary())), extensions=["admonition", "pymdownx.superfences"]
    )
    assert re.search(
        r'<figure class="meshlab-figure">\s*<svg[^>]*data-meshlab="chain-graph"', rendered
    )
    assert "&lt;svg" not in rendered
    assert "<p><svg" not in rendered


def test_a_one_call_chain_adds_nothing_to_the_page_or_the_terminal() -> None:
    staff_pod, labels = pod("staff-service", "safe")
    one_hop = traffic_graph([Outcome(200, staff_pod, labels)] * 3)
    report = report_with(one_hop)
    assert "### The whole chain" not in render_page(report)
    assert "chain:" not in render_text(report)


def test_the_terminal_report_says_the_chain_under_the_check() -> None:
    lines = render_text(report_with(canary())).splitlines()
    at = lines.index("dark release: FAIL")
    assert lines[at + 1].startswith("  chain: browser -> webapp [original 91%")


# ------------------------------------------------------------------------------------------
# How a run gets the graph: the pipeline wraps the mesh, the check never knows


def test_a_traced_mesh_counts_what_a_checks_sessions_sent(lab2_dir: Path) -> None:
    def respond(request: ProbeRequest, rng: random.Random) -> Outcome:
        return chain("experimental" if rng.random() < 0.1 else "original", "safe")

    prepared = prepare(lab2_dir, requests=200)
    with FakeBackend(respond, seed=1).deploy(prepared.to_deploy()) as mesh:
        traced = TracedMesh(mesh)
        assert traced.graph() is None
        assert traced.pods == mesh.pods
        result = run_check(prepared.checks[0], prepared.context(traced, requests=200))
    graph = traced.graph()
    assert graph is not None
    assert graph.requests == result.requests == 200
    assert graph.origin == "meshlab probe"
    result.details["traffic"] = graph  # what the pipeline does with it
    report = check_report(result)
    assert report.traffic == graph
    run = RunReport(lab="2-traffic", checks=[report])
    assert "chain: probe -> webapp [original" in render_text(run)
