"""Reports of a lab run: text for people, JSON for tools, JUnit XML for grading CI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from meshlab.pipeline import LabReport


def render_text(report: LabReport) -> str:
    lab = report.lab
    lines = [
        f"lab {lab.name}: {lab.title}",
        f"backend: {report.backend.get('backend', '?')}"
        + (f" — {report.backend['envoy']}" if "envoy" in report.backend else ""),
    ]
    lines += [
        f"note: {n.message}" + (f" ({n.location})" if n.location else "") for n in report.notes
    ]
    # The static analysis, compiler-style: errors and warnings here, info in the JSON report.
    lines += [line for d in report.diagnostics if d.level != "info" for line in str(d).splitlines()]
    infos = sum(d.level == "info" for d in report.diagnostics)
    if infos:
        lines.append(f"analysis: {infos} info (`meshlab analyze {lab.root}` shows them)")
    for result in report.results:
        lines.append(result.message)
    passed = sum(r.passed for r in report.results)
    failed = len(report.results) - passed
    awarded = sum(r.points_awarded for r in report.results)
    total = sum(r.points for r in report.results)
    lines.append(
        f"{passed} passed, {failed} failed ({awarded:g}/{total:g} points) in {report.seconds:.1f} s"
    )
    return "\n".join(lines)


def write_json(report: LabReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")


def write_junit(report: LabReport, path: Path) -> None:
    """One <testcase> per check; points and request counts ride along as properties."""
    failures = sum(not r.passed for r in report.results)
    suite = ET.Element(
        "testsuite",
        {
            "name": f"meshlab.{report.lab.name}",
            "tests": str(len(report.results)),
            "failures": str(failures),
            "errors": "0",
            "time": f"{report.seconds:.3f}",
        },
    )
    properties = ET.SubElement(suite, "properties")
    for key, value in report.backend.items():
        ET.SubElement(properties, "property", {"name": key, "value": value})
    for result in report.results:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": f"meshlab.{report.lab.name}",
                "name": result.name,
                "time": "0",
            },
        )
        props = ET.SubElement(case, "properties")
        facts: tuple[tuple[str, object], ...] = (
            ("points", result.points),
            ("points_awarded", result.points_awarded),
            ("requests", result.requests),
            ("outcome", result.outcome),
        )
        for name, fact in facts:
            ET.SubElement(props, "property", {"name": name, "value": str(fact)})
        if not result.passed:
            failure = ET.SubElement(case, "failure", {"message": result.message.splitlines()[0]})
            failure.text = result.message
        else:
            ET.SubElement(case, "system-out").text = result.message
    path.parent.mkdir(parents=True, exist_ok=True)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    path.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
