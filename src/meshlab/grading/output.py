"""The class report in the forms other tools read: JSON (the contract), JUnit XML (a test
suite per student, real times), CSV (a row per student), a Markdown table (a column per
check) and the terminal's summary table. Every student-controlled text is escaped first
(meshlab.errors.printable): a folder name cannot forge a row, a cell or an XML tag."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from pathlib import Path

from meshlab.errors import InputError, printable
from meshlab.grading.model import ClassReport, GradedSubmission


def _points(value: float) -> str:
    return f"{value:g}"


def write_json(report: ClassReport, path: Path) -> None:
    path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")


def read_json(path: Path) -> ClassReport:
    """A report written by `meshlab grade --json` (InputError if it is not one)."""
    from pydantic import ValidationError

    try:
        return ClassReport.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise InputError(
            f"{printable(str(path))} is not a report of `meshlab grade --json`: {first}"
        ) from None


def junit_xml(report: ClassReport) -> str:
    """A <testsuite> per student, a <testcase> per check; a submission that could not run is
    one <error> per check (it had no chance to pass)."""
    root = ET.Element("testsuites", name=f"meshlab grade {report.lab}")
    for s in report.submissions:
        failures = sum(1 for c in s.checks if c.points_awarded < c.points and s.error is None)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=s.name,
            tests=str(len(s.checks)),
            failures=str(failures),
            errors=str(len(s.checks) if s.error else 0),
            time=f"{s.seconds:.3f}",
        )
        properties = ET.SubElement(suite, "properties")
        for key, value in (("points", s.points), ("max_points", s.max_points)):
            ET.SubElement(properties, "property", name=key, value=_points(value))
        for check in s.checks:
            case = ET.SubElement(
                suite, "testcase", classname=s.name, name=check.name, time=f"{check.seconds:.3f}"
            )
            props = ET.SubElement(case, "properties")
            for key, value in (("points", check.points), ("points_awarded", check.points_awarded)):
                ET.SubElement(props, "property", name=key, value=_points(value))
            if s.error is not None:
                ET.SubElement(case, "error", message=s.error.splitlines()[0]).text = s.error
            elif check.outcome != "pass" and check.points_awarded < check.points:
                first = check.message.splitlines()[0] if check.message else check.outcome
                ET.SubElement(case, "failure", message=first).text = check.message
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def csv_text(report: ClassReport) -> str:
    """name, points, max_points, then the points of each check, then the error."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "points", "max_points", *report.check_names, "error"])
    for s in report.submissions:
        by_check = {c.name: c.points_awarded for c in s.checks}
        writer.writerow(
            [
                _cell(s.name),
                _points(s.points),
                _points(s.max_points),
                *(_points(by_check.get(n, 0.0)) for n in report.check_names),
                _cell((s.error or "").splitlines()[0] if s.error else ""),
            ]
        )
    return out.getvalue()


def _cell(text: str) -> str:
    """A spreadsheet reads `=...` as a formula: a student's name or message never is one."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _md(text: str) -> str:
    return printable(text).replace("|", "\\|").replace("`", "'")


def markdown_table(report: ClassReport) -> str:
    """A row per student, a column per check (its points awarded), then why it failed."""
    names = report.check_names
    lines = [
        f"# {_md(report.lab)}: points per submission",
        "",
        "| submission | points | " + " | ".join(_md(n) for n in names) + " | note |",
        "|---|---:|" + "---:|" * len(names) + "---|",
    ]
    for s in report.submissions:
        by_check = {c.name: c for c in s.checks}
        cells = [_points(by_check[n].points_awarded) if n in by_check else "–" for n in names]
        lines.append(
            f"| {_md(s.name)} | {_points(s.points)}/{_points(s.max_points)} | "
            + " | ".join(cells)
            + f" | {_md(note(s))} |"
        )
    return "\n".join(lines) + "\n"


def note(s: GradedSubmission) -> str:
    """One line on why a submission lost points (the first failed check's verdict), then
    the files of the submission that were not used."""
    ignored = f"ignored: {', '.join(i.split(': ')[0] for i in s.ignored)}" if s.ignored else ""
    why = ""
    if s.error:
        why = "could not run: " + s.error.splitlines()[0]
    else:
        lost = next((c for c in s.checks if c.points_awarded < c.points), None)
        if lost is not None:
            why = lost.message.splitlines()[0] if lost.message else lost.outcome
    return "; ".join(part for part in (ignored, why) if part)


def summary_lines(report: ClassReport, width: int = 100) -> list[str]:
    """The terminal's table: name, points, one column per check, a note cut to the width."""
    names = report.check_names
    rows = [["submission", "points", *names, "note"]]
    for s in report.submissions:
        by_check = {c.name: _points(c.points_awarded) for c in s.checks}
        rows.append(
            [
                s.name,
                f"{_points(s.points)}/{_points(s.max_points)}",
                *(by_check.get(n, "–") for n in names),
                printable(note(s)),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        line = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
        line = f"{line}  {row[-1]}"
        lines.append(line if len(line) <= width else line[: width - 1] + "…")
    graded = report.submissions
    full = sum(1 for s in graded if s.max_points and s.points == s.max_points)
    errors = sum(1 for s in graded if s.error)
    lines.append(f"{len(graded)} submissions: {full} full points, {errors} could not run")
    return lines
