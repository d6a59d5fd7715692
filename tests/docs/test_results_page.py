"""`meshlab results-page`: a JSON report as a Markdown page with the versioned app graph and the
share chart. Reports come from lab 2 on the fake backend (instant, seeded), so every outcome a
student can produce is covered without Envoy.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import markdown
import pytest
from click.testing import CliRunner

from meshlab.backends.base import Outcome
from meshlab.backends.fake import FakeBackend
from meshlab.checks.stats import Design, anytime_interval
from meshlab.cli import cli
from meshlab.errors import InputError
from meshlab.mesh.request import ProbeRequest
from meshlab.pipeline import RunOptions, run_lab
from meshlab.report import chart, graph, page
from meshlab.report.model import RunReport, SplitCheckReport
from meshlab.report.page import load_report

SVG = "{http://www.w3.org/2000/svg}"


def fleetman(weights: Mapping[str, float]) -> Any:
    """Answers like lab 2's pods (labels app and version, Deployment-style pod names); a key
    "HTTP 503" answers 503 NC with no pod, as Envoy does for a subset with no cluster."""
    names = list(weights)

    def respond(request: ProbeRequest, rng: random.Random) -> Outcome:
        choice = rng.choices(names, [weights[n] for n in names])[0]
        if choice.startswith("HTTP "):
            return Outcome(status=int(choice.split()[1]), response_flags="NC")
        deployment = "staff-service" if choice == "safe" else f"staff-service-{choice}"
        return Outcome(
            status=200,
            pod=f"{deployment}-0a1b2c3d4e-0",
            labels={"app": "staff-service", "version": choice, "pod-template-hash": "0a1b2c3d4e"},
        )

    return respond


def report_of(
    lab: Path, weights: Mapping[str, float], seed: int = 3, **options: Any
) -> dict[str, Any]:
    backend = FakeBackend(fleetman(weights), seed)
    return run_lab(lab, RunOptions(**options), backend=backend).model().model_dump(mode="json")


# The pictures and the page take the typed report, as `meshlab results-page` reads it back.


def app_graph_svg(check: Mapping[str, Any], ident: str = "graph") -> str:
    return graph.app_graph_svg(SplitCheckReport.model_validate(check), ident)


def share_chart_svg(check: Mapping[str, Any], ident: str = "chart") -> str:
    return chart.share_chart_svg(SplitCheckReport.model_validate(check), ident)


def render_page(report: Mapping[str, Any], source: str | None = None) -> str:
    return page.render_page(RunReport.model_validate(report), source)


def svg(text: str) -> ET.Element:
    """The SVG must be well-formed XML on its own: browsers parse inline SVG leniently, but a
    broken element would break everything after it."""
    return ET.fromstring(text)


def nodes(root: ET.Element, kind: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("data-node") == kind]


def texts(root: ET.Element) -> list[str]:
    return [e.text or "" for e in root.iter(f"{SVG}text")]


def as_html(page: str) -> str:
    """The page through Python-Markdown with the site's extensions (no mkdocs needed)."""
    return markdown.markdown(
        page,
        extensions=["admonition", "pymdownx.details", "pymdownx.superfences", "tables", "toc"],
    )


# ------------------------------------------------------------------------------------------
# The versioned app graph


def test_a_passing_canary_draws_one_app_box_with_a_node_per_version(lab2_dir: Path) -> None:
    report = report_of(lab2_dir, {"safe": 90, "risky": 10})
    check = report["checks"][0]
    root = svg(app_graph_svg(check))
    assert root.get("data-meshlab") == "app-graph"
    boxes = nodes(root, "box")
    assert [b.get("data-app") for b in boxes] == ["staff-service"]
    versions = {v.get("data-version"): v for v in nodes(root, "version")}
    assert set(versions) == {"safe", "risky"}
    assert all(v.get("data-app") == "staff-service" for v in versions.values())
    assert not nodes(root, "unanswered")
    assert not nodes(root, "missing")
    n = check["requests"]
    risky = check["observed"]["risky"]
    label = f"{100 * risky / n:.1f}% · {risky} req"
    assert label in texts(root)
    assert "configured 10%" in texts(root)
    assert "configured 90%" in texts(root)
    assert f"{n} req" in texts(root)  # client -> service
    assert len([e for e in root.iter() if e.get("data-edge") == "version"]) == 2
    # green: both shares as configured
    assert {v.get("stroke") for v in versions.values()} == {"#2e9e44"}


def test_an_undefined_subset_shows_the_unreached_version_and_envoys_503s(
    tmp_path: Path, lab2_dir: Path
) -> None:
    # What the mesh does when the DestinationRule lacks subset risky: 503 NC for that share.
    report = report_of(lab2_dir, {"safe": 90, "HTTP 503": 10}, seed=5)
    check = report["checks"][0]
    assert check["outcome"] == "fail"
    root = svg(app_graph_svg(check))
    assert [v.get("data-version") for v in nodes(root, "version")] == ["safe"]
    assert not nodes(root, "box")  # one version left: no box, as in Kiali
    assert [m.get("data-bucket") for m in nodes(root, "missing")] == ["risky"]
    assert "version=risky: not reached" in texts(root)
    (unanswered,) = nodes(root, "unanswered")
    assert unanswered.get("stroke") == "#e0403a"
    assert "HTTP 503 NC" in texts(root)
    count = check["observed"]["HTTP 503"]
    assert f"{100 * count / check['requests']:.1f}% · {count} req" in texts(root)


def test_pods_without_version_label_are_version_latest_as_in_istio() -> None:
    check = {
        "name": "c",
        "requests": 10,
        "by": "app",
        "request": {"url": "http://reviews:9080/"},
        "buckets": [
            {"bucket": "reviews", "expected": 1.0, "count": 10, "share": 1.0, "status": "ok"}
        ],
        "pods": [
            {"name": "reviews-abc-0", "labels": {"app": "reviews"}, "count": 6},
            {"name": "reviews-abc-1", "labels": {"app": "reviews"}, "count": 4},
        ],
    }
    root = svg(app_graph_svg(check))
    (node,) = nodes(root, "version")
    assert (node.get("data-app"), node.get("data-version")) == ("reviews", "latest")
    assert "100.0% · 10 req" in texts(root)
    assert "reviews" in texts(root)  # the service, from the URL


def test_canonical_labels_win_over_app_and_version() -> None:
    labels = {
        "service.istio.io/canonical-name": "staff",
        "service.istio.io/canonical-revision": "v2",
        "app": "x",
        "version": "y",
    }
    check = {
        "requests": 5,
        "by": "version",
        "pods": [{"name": "p-1-0", "labels": labels, "count": 5}],
        "buckets": [],
    }
    (node,) = nodes(svg(app_graph_svg(check)), "version")
    assert (node.get("data-app"), node.get("data-version")) == ("staff", "v2")


def test_a_report_from_before_pods_were_recorded_still_draws_the_versions() -> None:
    check = {
        "name": "canary-split",
        "requests": 100,
        "by": "version",
        "request": {"url": "http://fleetman-staff-service:8080/"},
        "buckets": [
            {"bucket": "safe", "expected": 0.9, "count": 88, "status": "ok"},
            {"bucket": "risky", "expected": 0.1, "count": 12, "status": "ok"},
        ],
    }
    root = svg(app_graph_svg(check))
    assert {v.get("data-version") for v in nodes(root, "version")} == {"safe", "risky"}
    assert [b.get("data-app") for b in nodes(root, "box")] == ["fleetman-staff-service"]


def test_graphs_on_one_page_do_not_share_ids(lab2_dir: Path) -> None:
    check = report_of(lab2_dir, {"safe": 90, "risky": 10})["checks"][0]
    first, second = svg(app_graph_svg(check, "a")), svg(app_graph_svg(check, "b"))
    ids = [e.get("id") for root in (first, second) for e in root.iter() if e.get("id")]
    assert len(ids) == len(set(ids))


# ------------------------------------------------------------------------------------------
# The chart


def rows(root: ET.Element, part: str) -> dict[str, ET.Element]:
    return {e.get("data-bucket", ""): e for e in root.iter() if e.get("data-part") == part}


def test_the_chart_places_band_configured_and_observed_on_one_scale(lab2_dir: Path) -> None:
    check = report_of(lab2_dir, {"safe": 90, "risky": 10})["checks"][0]
    root = svg(share_chart_svg(check))
    assert root.get("data-meshlab") == "share-chart"
    bands, configured, observed = (rows(root, p) for p in ("band", "configured", "observed"))
    assert set(bands) == set(configured) == set(observed) == {"safe", "risky"}
    # x positions grow with the share: 0% ... 100% maps linearly onto the plot
    x0 = float(next(e for e in root.iter(f"{SVG}line")).get("x1", "0"))
    x = {b: float(configured[b].get("x1", "0")) for b in configured}
    width = (x["safe"] - x["risky"]) / 0.8
    assert x["risky"] == pytest.approx(x0 + 0.1 * width, abs=0.2)
    band = bands["risky"]
    assert float(band.get("x", "0")) == pytest.approx(x0 + 0.05 * width, abs=0.2)
    assert float(band.get("width", "0")) == pytest.approx(0.15 * width, abs=0.2)
    assert {o.get("data-status") for o in observed.values()} == {"ok"}


def test_a_pass_shows_the_interval_that_decided_it(lab2_dir: Path) -> None:
    check = report_of(lab2_dir, {"safe": 90, "risky": 10})["checks"][0]
    root = svg(share_chart_svg(check))
    assert set(rows(root, "pass-interval")) == {"safe", "risky"}
    assert any("99.9% interval" in t for t in texts(root))
    assert any("99.9999% interval" in t for t in texts(root))
    page = render_page({"lab": "2-traffic", "checks": [check]})
    risky = next(b for b in check["buckets"] if b["bucket"] == "risky")
    design = Design(alpha=check["alpha"], beta=check["beta"], delta=check["delta"])
    lo, hi = anytime_interval(0.1, risky["count"], check["requests"], check["beta"], design)
    # The sentence quotes the interval the terminal verdict quotes.
    assert f"{100 * lo:.1f}–{100 * hi:.1f}%" in check["message"]
    assert f"{100 * lo:.1f}–{100 * hi:.1f}%, lies inside the band 5%–20%" in page
    # The larger share mirrors the canary: its interval is the complement.
    assert f"{100 * (1 - hi):.1f}–{100 * (1 - lo):.1f}%, lies inside the band 80%–95%" in page


def test_a_fail_shows_the_intervals_of_the_report_only(lab2_dir: Path) -> None:
    check = report_of(lab2_dir, {"safe": 50, "risky": 50})["checks"][0]
    assert check["outcome"] == "fail"
    root = svg(share_chart_svg(check))
    assert not rows(root, "pass-interval")
    assert set(rows(root, "interval")) == {"safe", "risky"}
    assert rows(root, "observed")["risky"].get("data-status") == "off"


def test_three_destinations_use_the_bonferroni_level(tmp_path: Path, lab2_dir: Path) -> None:
    lab = tmp_path / "lab"
    shutil.copytree(lab2_dir, lab)
    lab_file = lab / "lab.yaml"
    goal, three = "expect: {safe: 90, risky: 10}", "expect: {safe: 70, risky: 20, v3: 10}"
    lab_file.write_text(lab_file.read_text().replace(goal, three))
    check = report_of(lab, {"safe": 70, "risky": 20, "v3": 10})["checks"][0]
    page = render_page({"lab": "lab", "checks": [check]})
    # alpha = 1e-6 split over three tested shares
    assert "99.99997% interval" in page
    assert "is expected to get 20% and got" in page
    root = svg(app_graph_svg(check))
    assert {v.get("data-version") for v in nodes(root, "version")} == {"safe", "risky", "v3"}


# ------------------------------------------------------------------------------------------
# The page


def test_the_page_is_markdown_whose_svg_survives_rendering(lab2_dir: Path) -> None:
    report = report_of(lab2_dir, {"safe": 90, "risky": 10})
    page = render_page(report, "reports/lab-2-traffic.json")
    assert page.startswith(
        "<!-- Generated by `meshlab results-page` from reports/lab-2-traffic.json"
    )
    assert "# Results of lab 2-traffic" in page
    assert '!!! success "Passed: 1 of 1 check, 1/1 points"' in page
    rendered = as_html(page)
    for kind in ("app-graph", "share-chart"):
        assert re.search(
            rf'<figure class="meshlab-figure">\s*<svg[^>]*data-meshlab="{kind}"', rendered
        )
    assert "&lt;svg" not in rendered
    assert "<p><svg" not in rendered
    assert "<table>" in rendered  # the numbers as a table too
    assert "canary-split passed: risky got" in rendered  # the verdict, in its admonition


def test_a_failing_run_says_why_with_the_cause(lab2_dir: Path) -> None:
    report = report_of(lab2_dir, {"safe": 90, "HTTP 503": 10}, seed=5)
    # The analysis records the cause when the DestinationRule really lacks the subset; the
    # fake mesh only imitates the 503s, so add the cause the way the report carries it.
    report["checks"][0]["causes"] = [
        {
            "bucket": "risky",
            "effect": "503 NC (no cluster)",
            "reason": 'subset "risky" is not defined by any DestinationRule',
            "location": "2-traffic/istio-rules.yaml:21:15",
        }
    ]
    page = render_page(report)
    assert '!!! failure "Failed: 1 of 1 check failed, 0/1 points"' in page
    assert "## canary-split: failed" in page
    assert "**HTTP 503** got" in page
    assert "a bucket that must stay empty received a request" in page
    assert '!!! warning "Likely causes"' in page
    assert "`2-traffic/istio-rules.yaml:21:15`" in page
    assert "the mesh answers 503 NC (no cluster)." in page


def test_text_from_the_report_cannot_break_the_markup() -> None:
    check = {
        "name": "a <b> & *c*",
        "kind": "split",
        "outcome": "fail",
        "requests": 3,
        "by": "version",
        "request": {"url": "http://svc:80/"},
        "message": 'x "FAILED" ``` <script>alert(1)</script>\n  second line',
        "buckets": [
            {"bucket": "v<1>|x", "expected": 1.0, "count": 3, "status": "off"},
        ],
        "pods": [{"name": "p", "labels": {"app": "a&b", "version": "v<1>|x"}, "count": 3}],
    }
    page = render_page({"lab": 'lab "x"', "title": "*t*", "checks": [check]})
    rendered = as_html(page)
    assert "<script>" not in rendered
    assert "<b>" not in rendered
    svg(app_graph_svg(check))
    svg(share_chart_svg(check))
    assert "````text" in page  # a fence longer than any backtick run in the message


def test_non_split_checks_get_their_verdict_only() -> None:
    check = {
        "name": "headers",
        "kind": "header",
        "outcome": "pass",
        "passed": True,
        "message": "ok",
    }
    page = render_page({"lab": "l", "passed": True, "checks": [check]})
    assert "## headers: passed" in page
    assert "data-meshlab" not in page


# ------------------------------------------------------------------------------------------
# Reading reports and the command


def test_load_report_rejects_what_is_not_a_report(tmp_path: Path) -> None:
    cases = {"broken.json": "{", "list.json": "[]", "nochecks.json": '{"lab": "x"}'}
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(InputError, match="is not a meshlab JSON report"):
            load_report(path)
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"lab": "x", "checks": [{"kind": "split", "requests": "many"}]}')
    with pytest.raises(InputError, match=r"wrong\.json is not .*: checks\[0\]\.requests: input"):
        load_report(wrong)


def test_the_command_writes_the_page(tmp_path: Path, lab2_dir: Path) -> None:
    report = tmp_path / "r.json"
    report.write_text(json.dumps(report_of(lab2_dir, {"safe": 90, "risky": 10})))
    out = tmp_path / "docs" / "results" / "lab.md"
    done = CliRunner().invoke(cli, ["results-page", str(report), "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert out.read_text().startswith("<!-- Generated by `meshlab results-page`")
    printed = CliRunner().invoke(cli, ["results-page", str(report)])
    assert printed.exit_code == 0
    assert printed.output == out.read_text()


def test_the_command_refuses_a_missing_or_broken_report(tmp_path: Path) -> None:
    from meshlab.cli import main

    broken = tmp_path / "broken.json"
    broken.write_text("not json")
    for argv in (["results-page", str(tmp_path / "missing.json")], ["results-page", str(broken)]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2


def test_analysis_findings_are_shown_errors_first_and_info_folded() -> None:
    def finding(code: str, level: str) -> dict[str, Any]:
        return {
            "code": code,
            "level": level,
            "message": f"{code} says so",
            "resource": "VirtualService default/fleetman-staff-service",
            "location": "2-traffic/istio-rules.yaml:20:17",
            "hint": "did you mean risky-group?" if level == "error" else None,
        }

    report = {
        "lab": "2-traffic",
        "diagnostics": [finding("ML0202", "info"), finding("IST0101", "error")],
        "checks": [
            {"name": "c", "outcome": "pass", "diagnostics": [finding("KIA1107", "warning")]}
        ],
    }
    page = render_page(report)
    assert '!!! failure "Analysis of the lab\'s files: 1 error"' in page
    assert '??? info "Analysis of the lab\'s files: 1 info"' in page
    assert '!!! warning "Analysis of this check: 1 warning"' in page
    assert (
        "- **IST0101** error · VirtualService default/fleetman-staff-service: IST0101 says so "
        "(`2-traffic/istio-rules.yaml:20:17`). Hint: did you mean risky-group?"
    ) in page
    assert page.index("IST0101") < page.index("ML0202")


def fits(root: ET.Element) -> list[str]:
    """Texts that would stick out of the picture (with the module's generous glyph width)."""
    from meshlab.report.svg import CHAR, FONT_SIZE

    width = float(root.get("width", "0"))
    height = float(root.get("height", "0"))
    outside = []
    for element in root.iter(f"{SVG}text"):
        x, y = float(element.get("x", "0")), float(element.get("y", "0"))
        size = float(element.get("font-size", FONT_SIZE))
        w = len(element.text or "") * CHAR * size / FONT_SIZE
        left = {"start": x, "middle": x - w / 2, "end": x - w}[element.get("text-anchor", "start")]
        if left < 0 or left + w > width or y > height or y - size < 0:
            outside.append(f"{element.text!r} at {x:.0f},{y:.0f} in {width:.0f}x{height:.0f}")
    return outside


@pytest.mark.parametrize(
    "weights", [{"safe": 90, "risky": 10}, {"safe": 50, "risky": 50}, {"safe": 90, "HTTP 503": 10}]
)
def test_every_label_fits_inside_its_picture(lab2_dir: Path, weights: dict[str, float]) -> None:
    check = report_of(lab2_dir, weights, seed=5)["checks"][0]
    assert not fits(svg(app_graph_svg(check)))
    assert not fits(svg(share_chart_svg(check)))
