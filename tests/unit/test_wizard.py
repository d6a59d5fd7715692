"""Kiali's wizards offline: the weighted routing wizard's output is the course's Kiali-created
pair to the byte; request matching writes rules that route as asked."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshlab.cli import cli
from meshlab.mesh.request import ProbeRequest
from meshlab.mesh.trace import trace_request
from meshlab.mesh.wizard import WizardError, default_weights, parse_rule
from meshlab.pipeline import prepare

ROOT = Path(__file__).resolve().parents[2]
COURSE = ROOT / "CourseFiles" / "2-Traffic-Starting"
STAFF = "fleetman-staff-service"


def wizard(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["wizard", *args])
    return result.exit_code, result.output


def test_weighted_routing_writes_the_course_kiali_files(lab2_dir: Path) -> None:
    code, text = wizard("weighted", STAFF, str(lab2_dir), "safe=90", "risky=10")
    assert code == 0, text
    expected = (COURSE / "kiali-created-vs.yaml").read_text() + "---\n"
    expected += (COURSE / "kiali-created-dr.yaml").read_text()
    assert text == expected


def test_kiali_spreads_unset_weights_evenly_with_the_rest_on_the_last() -> None:
    assert default_weights(["a", "b", "c"]) == {"a": 33, "b": 33, "c": 34}
    assert default_weights(["safe", "risky"]) == {"safe": 50, "risky": 50}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["safe=90", "beta=10"], "no version 'beta' behind the service (versions: safe, risky)"),
        (["safe=90", "risky=20"], "add up to 100, as Kiali's sliders do (these add up to 110)"),
        (["safe=ninety"], "'safe=ninety' is not VERSION=WEIGHT"),
    ],
)
def test_weights_kiali_would_not_allow_are_usage_errors(
    lab2_dir: Path, args: list[str], message: str
) -> None:
    code, text = wizard("weighted", STAFF, str(lab2_dir), *args)
    assert code == 2
    assert message in text


def test_an_unknown_service_lists_the_services(lab2_dir: Path) -> None:
    code, text = wizard("weighted", "fleetman-staf", str(lab2_dir))
    assert code == 2
    assert "no Service default/fleetman-staf in the lab" in text
    assert "fleetman-staff-service" in text


def test_a_service_without_versions_has_nothing_to_route(lab2_dir: Path, tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    shutil.copytree(lab2_dir, lab)
    apps = lab / "fleetman.yaml"
    apps.write_text(apps.read_text().replace("        version: safe\n", ""))
    code, text = wizard("weighted", "fleetman-webapp", str(lab))
    assert code == 2
    assert "has a 'version' label" in text


def test_request_matching_routes_as_the_rules_say(lab2_dir: Path, tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    shutil.copytree(lab2_dir, lab)
    code, _ = wizard(
        "matching",
        STAFF,
        str(lab),
        "--rule",
        "header:x-my-header=canary -> risky",
        "--rule",
        "-> safe",
        "-o",
        str(lab / "istio-rules.yaml"),
    )
    assert code == 0
    plan = prepare(lab).plan
    url = f"http://{STAFF}:8080/driver/City%20Truck"
    canary = trace_request(plan, ProbeRequest(url, "GET", {"x-my-header": "canary"}))
    assert [t.target.subset for t in canary.targets] == ["risky"]
    plain = trace_request(plan, ProbeRequest(url))
    assert [t.target.subset for t in plain.targets] == ["safe"]
    assert plain.skipped[0].reason == 'header x-my-header should be exact "canary", and is absent'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("header:end-user=jason", "write CONDITIONS -> VERSION"),
        ("cookie=x -> risky", "match on header:NAME, uri, method, authority, scheme"),
        ("uri -> risky", "write FIELD=OP:VALUE"),
    ],
)
def test_rules_that_do_not_parse_say_how_to_write_them(text: str, message: str) -> None:
    with pytest.raises(WizardError, match=message):
        parse_rule(text)


def test_rule_operators_default_to_exact() -> None:
    rule = parse_rule("uri=prefix:/api, header:End-User=jason -> risky")
    assert [(m.field, m.op, m.value, m.name) for m in rule.matches] == [
        ("uri", "prefix", "/api", ""),
        ("headers", "exact", "jason", "end-user"),
    ]
