"""Issue #9, item 7: text from a lab's files never reaches a terminal, a CI log or a report
raw. No forged `::warning::` or `1 passed, 0 failed` line, valid JUnit XML, finite JSON."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from meshlab.backends.fake import FakeBackend, weighted_pods
from meshlab.errors import InputError, Location, printable
from meshlab.pipeline import RunOptions, run_lab
from meshlab.report.model import RunReport
from meshlab.report.text import render_lines, write_junit

REPO = Path(__file__).parents[2]
TRAFFIC_LAB = REPO / "labs" / "2-traffic"
FORGED = "\n1 passed, 0 failed (1/1 points) in 0.1 s\n::warning::forged\r::error::x\x1b[2K"


def forged_lines(lines: list[str]) -> list[str]:
    """Lines a CI runner or a grader's script would read as meshlab's own verdict."""
    return [
        line
        for line in lines
        if line.startswith("::") or re.match(r"^\d+ passed, \d+ failed", line) or "\x1b" in line
    ]


def test_printable_escapes_every_control_character() -> None:
    assert printable("a\nb\r\x1b[31mc\x85\u2028\u202e\x00") == (
        "a\\x0ab\\x0d\\x1b[31mc\\x85\\u2028\\u202e\\x00"
    )
    assert printable("a\nb\tc", newlines=True) == "a\nb\\x09c"
    assert printable("plain ascii, é and α stay") == "plain ascii, é and α stay"


def test_an_input_error_is_one_line_whatever_it_quotes() -> None:
    error = InputError(f'unknown field "spec.{FORGED}"', Location(Path(f"a{FORGED}.yaml"), 3))
    assert len(str(error).split("\n")) == 1
    assert not forged_lines(str(error).split("\n"))


@pytest.fixture
def forged_lab(tmp_path: Path) -> Path:
    """A lab whose folder name forges lines: it is in the report's first line and in every
    file:line a check message cites."""
    lab = tmp_path / f"lab{FORGED}"
    shutil.copytree(TRAFFIC_LAB, lab, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return lab


def test_a_run_report_prints_no_forged_line(forged_lab: Path) -> None:
    backend = FakeBackend(weighted_pods({"safe": 50, "risky": 50}))  # fails: 50% is not 10%
    report = run_lab(forged_lab, RunOptions(requests=200), backend=backend)
    lines = [line for line, _ in render_lines(report.model())]
    assert not forged_lines(lines[:-1]), lines
    assert re.match(r"^0 passed, 1 failed", lines[-1])
    assert any("\\x0a1 passed, 0 failed" in line for line in lines)  # still readable, escaped


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        ("lab.yaml", "title: Canary release", 'title: "Canary\\n::warning::x'),
        ("lab.yaml", "name: canary-split", 'name: "canary\\n1 passed, 0 failed"'),
        ("lab.yaml", "by: version", 'by: "version\\n::warning::x"'),
        ("lab.yaml", "    by: version", '      headers: {x-a: "\\n::warning::"}\n    by: version'),
        ("lab.yaml", "istio-rules.yaml]", '"istio-rules.yaml\\n::warning::x"]'),
        ("istio-rules.yaml", "  - fleetman-staff-service", '  - "a\\n::warning::x"'),
        ("istio-rules.yaml", "host: fleetman-staff-service", 'host: "a\\e[2K\\n::warning::"'),
        ("istio-rules.yaml", "  hosts:", '  "hosts\\n1 passed, 0 failed": 1\n  hosts:'),
    ],
)
def test_forging_input_is_refused_on_one_escaped_line(
    forged_lab: Path, file: str, old: str, new: str
) -> None:
    path = forged_lab / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        run_lab(forged_lab, backend=FakeBackend(weighted_pods({"safe": 9, "risky": 1})))
    lines = str(caught.value).split("\n")
    assert not forged_lines(lines), lines
    assert all(
        line.startswith(("  hint:", str(forged_lab)[:5])) or ": error:" in line for line in lines
    )


def hostile_report() -> RunReport:
    nasty = f"name{FORGED}\x00\x07\ud800\ufffe"
    quoted = "failed: x\x1c::warning::a\x85::warning::b\u2028::warning::c\x1b[2K\rd\ud800\n  more"
    return RunReport.model_validate(
        {
            "lab": nasty,
            "title": nasty,
            "backend_info": {"backend": "fake", nasty: nasty},
            "notes": [{"message": nasty, "location": nasty}],
            "diagnostics": [{"code": "IST0101", "level": "error", "message": nasty, "hint": nasty}],
            # a check's message is meshlab's own lines; what it quotes has no "\n" (validated)
            "checks": [
                {"name": nasty, "kind": "status", "passed": False, "message": quoted},
                {"name": "ok", "kind": "status", "passed": True, "message": quoted},
            ],
        }
    )


def test_the_text_report_escapes_every_field() -> None:
    lines = [line for line, _ in render_lines(hostile_report())]
    assert not forged_lines(lines[:-1]), lines
    assert all(printable(line) == line for line in lines)


def test_junit_is_valid_xml_whatever_the_input(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit(hostile_report(), path)
    root = ET.parse(path).getroot()  # raises on a character XML 1.0 forbids
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 2
    failure = cases[0].find("failure")
    assert failure is not None
    assert "\\x1b[2K" in (failure.text or "")
    assert "\\x00" in cases[0].get("name", "")


def test_the_json_report_has_finite_numbers_only(forged_lab: Path) -> None:
    backend = FakeBackend(weighted_pods({"safe": 9, "risky": 1}))
    report = run_lab(forged_lab, RunOptions(requests=200), backend=backend).model()
    text = report.model_dump_json()
    assert not re.search(r"\b(NaN|Infinity)\b", text)
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the JSON report"))
