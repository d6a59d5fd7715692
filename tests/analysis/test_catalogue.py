"""Meta-tests: the catalogue, the registry and the corpus keep each other honest."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
from test_corpus import CASES, expectations

from meshlab.analysis import Context, analyze_paths, analyzers
from meshlab.analysis.messages import CATALOGUE, by_code
from meshlab.load.manifests import load_manifests_partial

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "reference" / "analyzer.md"
ISTIO_REQUIRED = {
    "IST0002", "IST0101", "IST0102", "IST0103", "IST0106", "IST0109", "IST0112", "IST0116",
    "IST0118", "IST0128", "IST0129", "IST0130", "IST0131", "IST0132", "IST0133", "IST0134",
    "IST0137", "IST0140", "IST0145", "IST0162", "IST0165", "IST0173", "IST0174", "IST0177",
}  # fmt: skip


def test_analyzer_names_are_unique_and_the_registry_is_alphabetical() -> None:
    names = [a.metadata.name for a in analyzers()]
    assert len(names) == len(set(names))
    assert names == sorted(names)


def test_message_names_are_unique_and_each_code_has_one_level() -> None:
    names = [m.name for m in CATALOGUE]
    assert len(names) == len(set(names))
    for code, messages in by_code().items():
        assert re.fullmatch(r"(IST|ML)\d{4}", code), code
        assert len({m.level for m in messages}) == 1, code
        assert len({m.name.split("/")[0] for m in messages}) == 1, code  # one meaning
        if code.startswith("IST"):
            assert all(m.origin == "istioctl" for m in messages), code
        else:
            assert all(m.origin != "istioctl" for m in messages), code


def test_the_istioctl_catalogue_of_the_issue_is_covered() -> None:
    assert set(by_code()) >= ISTIO_REQUIRED


def test_every_code_has_positive_and_negative_corpus_cases() -> None:
    positive: set[str] = set()
    negative: set[str] = set()
    for case in CASES:
        found = expectations(case)
        positive |= found.expected_codes
        negative |= found.never
    codes = set(by_code())
    assert codes - positive == set(), "codes no corpus case expects"
    assert codes - negative == set(), "codes no corpus case rules out"
    assert positive - codes == set(), "corpus expects codes the catalogue does not have"


def test_every_code_is_documented_with_an_example_and_a_fix() -> None:
    text = DOCS.read_text(encoding="utf-8")
    sections = re.split(r"^### ", text, flags=re.MULTILINE)
    documented = {s.split()[0]: s for s in sections[1:]}
    for code in by_code():
        assert code in documented, f"{code} has no section in {DOCS.name}"
        section = documented[code]
        assert "```yaml" in section, f"{code}: no example"
        assert "Fix" in section, f"{code}: no fix"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_analyzers_read_only_the_kinds_they_declare(case: Path) -> None:
    files = sorted(case.glob("*.yaml"))
    resources, rejected = load_manifests_partial(files)
    for analyzer in analyzers():
        ctx = Context(resources, "default", rejected)
        analyzer.analyze(ctx)
        undeclared = ctx.kinds_read - set(analyzer.metadata.inputs)
        assert not undeclared, f"{analyzer.metadata.name} reads {undeclared}"


def test_declared_inputs_are_all_read_somewhere() -> None:
    read: dict[str, set[str]] = defaultdict(set)
    for case in CASES:
        resources, rejected = load_manifests_partial(sorted(case.glob("*.yaml")))
        for analyzer in analyzers():
            ctx = Context(resources, "default", rejected)
            analyzer.analyze(ctx)
            read[analyzer.metadata.name] |= ctx.kinds_read
    for analyzer in analyzers():
        assert set(analyzer.metadata.inputs) == read[analyzer.metadata.name]


def test_every_diagnostic_has_a_line_and_column() -> None:
    for case in CASES:
        for d in analyze_paths([case]).diagnostics:
            assert d.location is not None
            assert d.location.line >= 1
            assert d.location.column >= 1


@pytest.mark.parametrize(
    "paths",
    [
        ["labs/2-traffic"],
        ["CourseFiles/2-Traffic-Starting"],
        ["CourseFiles/2-Traffic-Starting", "labs/2-traffic/fleetman.yaml"],
        *[[str(p.relative_to(ROOT))] for p in sorted((ROOT / "labs").glob("*/lab.yaml"))],
        *[[str(p.relative_to(ROOT))] for p in sorted((ROOT / "CourseFiles").glob("*/"))],
    ],
    ids=str,
)
def test_course_files_analyze_clean(paths: list[str]) -> None:
    found = analyze_paths([ROOT / p for p in paths]).diagnostics
    loud = [str(d) for d in found if d.level != "info"]
    assert not loud, "\n".join(loud)


def test_the_outputs_shown_in_the_docs_are_current() -> None:
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"`meshlab analyze ([^`]+)`:\n\n```text\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= len(by_code())
    for path, block in blocks:
        produced = {
            line
            for d in analyze_paths([ROOT / path]).diagnostics
            for line in str(d).replace(str(ROOT) + "/", "").splitlines()
        }
        for line in block.splitlines():
            assert line in produced, f"docs show a line `meshlab analyze {path}` no longer prints"
