"""`meshlab explain`: one request traced through the configuration, checked line by line
against the Envoy configuration meshlab generates for the same lab."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from meshlab.backends.embedded.envoy.bootstrap import placeholder_addresses, render_bootstrap
from meshlab.cli import cli
from meshlab.mesh.request import ProbeRequest
from meshlab.mesh.trace import trace_request
from meshlab.pipeline import prepare
from meshlab.report.explain import explain_lines
from staff_rules import source_rules

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "mesh"
STAFF = "http://fleetman-staff-service:8080/driver/City%20Truck"
LAB = "title: t\nmanifests: [apps.yaml, rules.yaml]\nchecks:\n  - name: c\n    kind: split\n"
LAB += f"    request: {{url: {STAFF}}}\n"


def scenario(tmp_path: Path, rules: str) -> Path:
    shutil.copy(DATA / "apps.yaml", tmp_path / "apps.yaml")
    shutil.copy(DATA / rules, tmp_path / "rules.yaml")
    (tmp_path / "lab.yaml").write_text(LAB)
    return tmp_path


def envoy_names(lab: Path) -> dict[str, set[str]]:
    """Listener, virtual host, route and cluster names of the Envoy config for this lab."""
    plan = prepare(lab).plan
    config: dict[str, Any] = render_bootstrap(plan, placeholder_addresses(plan))
    resources = config["static_resources"]
    vhosts = [
        v
        for listener in resources["listeners"]
        for chain in listener.get("filter_chains", [])
        for f in chain["filters"]
        for v in f["typed_config"].get("route_config", {}).get("virtual_hosts", [])
    ]
    return {
        "listeners": {lst["name"] for lst in resources["listeners"]},
        "vhosts": {v["name"] for v in vhosts},
        "routes": {r["name"] for v in vhosts for r in v["routes"] if "name" in r},
        "clusters": {c["name"] for c in resources["clusters"]},
    }


def explain(lab: Path, url: str, **headers: str) -> list[str]:
    return explain_lines(trace_request(prepare(lab).plan, ProbeRequest(url, "GET", headers)))


def field(lines: list[str], label: str) -> list[str]:
    """The text of every row with this label (continuation rows excluded)."""
    return [line[11:] for line in lines if line.startswith(f"{label} ")]


def test_lab_2_is_traced_to_the_objects_envoy_gets(lab2_dir: Path) -> None:
    lines = explain(lab2_dir, STAFF)
    names = envoy_names(lab2_dir)
    listener = field(lines, "listener")[0].split(" ")[0]
    assert listener in names["listeners"]
    vhost = field(lines, "vhost")[0].split(":")[0] + ":8080"
    assert vhost in names["vhosts"]
    assert 'domain "fleetman-staff-service" matched' in field(lines, "vhost")[0]
    targets = [line.split("%  ")[1].split()[0] for line in lines if "%  outbound|" in line]
    assert targets == [
        "outbound|8080|safe|fleetman-staff-service.default.svc.cluster.local",
        "outbound|8080|risky|fleetman-staff-service.default.svc.cluster.local",
    ]
    assert set(targets) <= names["clusters"]
    assert any(" 90.0%  outbound|8080|safe|" in line for line in lines)
    assert any(" 10.0%  outbound|8080|risky|" in line for line in lines)
    assert field(lines, "route") == ["route 1 (istio-rules.yaml:13)"]
    assert any("(Istio's default)" in p for p in field(lines, "policies"))


def test_an_unmatched_header_route_is_skipped_with_the_reason(tmp_path: Path) -> None:
    lab = scenario(tmp_path, "header-canary.yaml")
    names = envoy_names(lab)
    lines = explain(lab, STAFF)
    assert field(lines, "skipped") == [
        'route 1 (rules.yaml:12): header end-user should be exact "jason", and is absent'
    ]
    assert field(lines, "route") == ['route 2 (rules.yaml:19) (Envoy route "everyone")']
    assert "everyone" in names["routes"]
    tester = explain(lab, STAFF, **{"end-user": "jason"})
    assert not field(tester, "skipped")
    assert field(tester, "route") == ['route 1 (rules.yaml:12) (Envoy route "tester")']
    assert any("100.0%  outbound|8080|risky|" in line for line in tester)


def test_a_faulted_rule_says_what_share_the_sidecar_aborts(tmp_path: Path) -> None:
    lab = scenario(tmp_path, "fault-abort.yaml")
    lines = explain(lab, STAFF)
    assert any("100.0%  aborted by the sidecar with 502 (FI)" in line for line in lines)
    assert "fault: abort 502 for 100%" in next(line.strip() for line in lines if "fault:" in line)


def test_requests_that_reach_nothing_say_why(lab2_dir: Path) -> None:
    assert field(explain(lab2_dir, "http://nosuch:8080/"), "outcome") == [
        "no Service is named 'nosuch': DNS cannot resolve it"
    ]
    assert field(explain(lab2_dir, "http://fleetman-staff-service:9999/"), "outcome") == [
        "no Service in the mesh serves HTTP on port 9999: the connection is refused"
    ]


def test_the_command_prints_text_or_json(lab2_dir: Path) -> None:
    runner = CliRunner()
    text = runner.invoke(cli, ["explain", str(lab2_dir), STAFF])
    assert text.exit_code == 0, text.output
    assert text.output.startswith(f"request    GET {STAFF}\n")
    data = json.loads(runner.invoke(cli, ["explain", str(lab2_dir), STAFF, "--json"]).output)
    assert data["listener"] == "0.0.0.0_8080"
    assert [d["subset"] for d in data["destinations"]] == ["safe", "risky"]
    assert data["route"]["location"].endswith("istio-rules.yaml:13:5")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ftp://x/"], "give a URL such as http://service:8080/path"),
        (["http://x:port/"], "Invalid value for URL"),
        (["http://x/", "-H", "no colon"], "is not 'name: value'"),
    ],
)
def test_bad_arguments_are_usage_errors(lab2_dir: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["explain", str(lab2_dir), *args])
    assert result.exit_code == 2
    assert message in result.output


def test_the_docs_show_the_real_output(lab2_dir: Path) -> None:
    """docs/reference/cli.md's example is this command's output, to the letter."""
    page = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    command = f"$ meshlab explain labs/2-traffic {STAFF}\n"
    shown = page.split(command, 1)[1].split("```", 1)[0]
    result = CliRunner().invoke(cli, ["explain", "labs/2-traffic", STAFF])
    assert result.output == shown


SOURCE_RULES = source_rules("api-gateway")


def test_from_a_workload_its_labels_pick_the_rules_its_sidecar_gets(
    lab2_dir: Path, tmp_path: Path
) -> None:
    lab = tmp_path / "lab"
    shutil.copytree(lab2_dir, lab)
    (lab / "istio-rules.yaml").write_text(SOURCE_RULES)
    runner = CliRunner()
    gateway = runner.invoke(cli, ["explain", str(lab), STAFF, "--from", "api-gateway"])
    assert gateway.exit_code == 0, gateway.output
    lines = gateway.output.splitlines()
    assert (
        lines[1].strip().startswith("as a pod of Deployment default/api-gateway (app=api-gateway")
    )
    assert field(lines, "route")[0].startswith("route 1 (istio-rules.yaml:")
    assert any("100.0%  outbound|8080|risky|" in line for line in lines)
    # the meshed test client (and any other workload) is not api-gateway: the rule is not
    # even in its sidecar's configuration, so route 1 is the catch-all to safe
    for args in ([], ["--from", "webapp"], ["--from", "default/webapp"]):
        other = runner.invoke(cli, ["explain", str(lab), STAFF, *args]).output.splitlines()
        assert any("100.0%  outbound|8080|safe|" in line for line in other), other
    data = json.loads(
        runner.invoke(cli, ["explain", str(lab), STAFF, "--from", "webapp", "--json"]).output
    )
    assert data["from"].startswith("Deployment default/webapp")


def test_from_an_unknown_workload_lists_the_workloads(lab2_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["explain", str(lab2_dir), STAFF, "--from", "nosuch"])
    assert result.exit_code == 2
    assert "no Deployment or Pod default/nosuch in the lab" in result.output
    assert "default/api-gateway" in result.output


def test_from_the_browser_the_trace_goes_through_the_ingress_gateway(tmp_path: Path) -> None:
    data = Path(__file__).resolve().parents[1] / "data" / "gateways"
    for name in ("webapp.yaml", "subdomain.yaml"):
        shutil.copy(data / name, tmp_path / name)
    (tmp_path / "lab.yaml").write_text(
        "title: t\nmanifests: [webapp.yaml, subdomain.yaml]\nchecks:\n  - name: c\n    kind: "
        "split\n    request: {url: 'http://fleetman.com/', from: browser}\n    expect: {a: 1}\n"
    )
    runner = CliRunner()
    served = runner.invoke(
        cli, ["explain", str(tmp_path), "http://experimental.fleetman.com/", "--from", "browser"]
    )
    assert "through the ingress gateway istio-system/istio-ingressgateway" in served.output
    assert "subset experimental" in served.output
    typo = runner.invoke(
        cli, ["explain", str(tmp_path), "http://experimentl.fleetman.com/", "--from", "browser"]
    )
    assert (
        "no VirtualService bound to default/ingress-gateway-configuration serves host"
        in typo.output
    )
    lab2 = runner.invoke(cli, ["explain", "labs/2-traffic", STAFF, "--from", "browser"])
    assert lab2.exit_code == 2
    assert "no Gateway selecting `istio: ingressgateway`" in lab2.output
