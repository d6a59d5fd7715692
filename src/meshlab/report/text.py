"""Reports of a lab run: text for people, JSON for tools, JUnit XML for grading CI.

All three render the typed :class:`~meshlab.report.model.RunReport`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

from meshlab.errors import printable
from meshlab.report.model import RunReport
from meshlab.report.traffic import traffic_summary

Style = Literal["plain", "pass", "fail"]  # a verdict line that passed or failed, or neither


def header_lines(lab: str, title: str, backend_info: Mapping[str, str]) -> list[str]:
    """What a run is about, said before any traffic flows (and again in the report); escaped,
    as every line of the text report."""
    backend = backend_info.get("backend", "?")
    envoy = f" — {backend_info['envoy']}" if "envoy" in backend_info else ""
    return [printable(f"lab {lab}: {title}"), printable(f"backend: {backend}{envoy}")]


def render_lines(report: RunReport, header: bool = True) -> Iterator[tuple[str, Style]]:
    """The text report line by line, each with the style of its verdict (if it states one);
    without the header when it was printed before the run.

    Every line is escaped (`printable`): text from a manifest or lab.yaml never reaches the
    terminal or a CI log raw, so it cannot forge a line such as `1 passed, 0 failed`."""
    for line, style in _lines(report, header):
        yield printable(line), style


def _lines(report: RunReport, header: bool) -> Iterator[tuple[str, Style]]:
    if header:
        for line in header_lines(report.lab, report.title, report.backend_info):
            yield line, "plain"
    for note in report.notes:
        yield f"note: {note.message}" + (f" ({note.location})" if note.location else ""), "plain"
    # The static analysis, compiler-style: errors and warnings here, info in the JSON report.
    for d in report.diagnostics:
        if d.level != "info":
            where = f"{d.location}: " if d.location else ""
            resource = f" [{d.resource}]" if d.resource else ""
            yield printable(f"{where}{d.level} {d.code}{resource} {d.message}"), "plain"
            if d.hint:
                yield f"  hint: {printable(d.hint)}", "plain"
    infos = sum(d.level == "info" for d in report.diagnostics)
    if infos:
        folder = report.lab_dir or report.lab
        yield f"analysis: {infos} info (`meshlab analyze {folder}` shows them)", "plain"
    for check in report.checks:
        verdict: Style = "pass" if check.passed else "fail"
        # "\n" only: splitlines() would also break at \x1c, \x85, \u2028 (escaped instead)
        for i, line in enumerate(check.message.split("\n")):
            yield line, verdict if i == 0 else "plain"
        if check.traffic is not None and check.traffic.depth >= 2:  # a chain of calls
            for line in traffic_summary(check.traffic):
                yield line, "plain"
    passed = sum(c.passed for c in report.checks)
    failed = len(report.checks) - passed
    yield (
        f"{passed} passed, {failed} failed ({report.points_awarded:g}/{report.points:g} points) "
        f"in {report.seconds:.1f} s",
        "pass" if report.passed else "fail",
    )


def render_text(report: RunReport) -> str:
    return "\n".join(line for line, _ in render_lines(report))


def write_json(report: RunReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")


@functools.cache
def _not_xml() -> re.Pattern[str]:
    """XML 1.0 allows tab, newline, carriage return and these ranges only; anything else (an
    ANSI escape from a manifest, a lone surrogate) would make the whole file unreadable.
    Compiled on first use (~5 ms): only `--junit` writes XML."""
    return re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: str) -> str:
    return _not_xml().sub(lambda m: f"\\x{ord(m.group()):02x}", printable(text, newlines=True))


def write_junit(report: RunReport, path: Path) -> None:
    """One <testcase> per check; points and request counts ride along as properties. Every
    string is made valid XML 1.0 text first (`_xml`), whatever the lab's files held."""
    import xml.etree.ElementTree as ET  # only `--junit` writes XML

    failures = sum(not c.passed for c in report.checks)
    suite = ET.Element(
        "testsuite",
        {
            "name": _xml(f"meshlab.{report.lab}"),
            "tests": str(len(report.checks)),
            "failures": str(failures),
            "errors": "0",
            "time": f"{report.seconds:.3f}",
        },
    )
    properties = ET.SubElement(suite, "properties")
    for key, value in report.backend_info.items():
        ET.SubElement(properties, "property", {"name": _xml(key), "value": _xml(value)})
    for check in report.checks:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": _xml(f"meshlab.{report.lab}"),
                "name": _xml(check.name),
                "time": f"{check.seconds:.3f}",
            },
        )
        props = ET.SubElement(case, "properties")
        facts: tuple[tuple[str, object], ...] = (
            ("points", check.points),
            ("points_awarded", check.points_awarded),
            ("requests", check.requests),
            ("outcome", check.outcome),
        )
        for name, fact in facts:
            ET.SubElement(props, "property", {"name": name, "value": _xml(str(fact))})
        if not check.passed:
            first = check.message.split("\n")[0] if check.message else check.outcome
            failure = ET.SubElement(case, "failure", {"message": _xml(first)})
            failure.text = _xml(check.message)
        else:
            ET.SubElement(case, "system-out").text = _xml(check.message)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    path.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
