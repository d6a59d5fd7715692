"""The corpus: one folder per broken (or deliberately clean) configuration under corpus/.

Each YAML line may end in `# expect: CODE[, CODE]`: a diagnostic with that code must be
reported at that line. `# expect-not: CODES` anywhere in a case: none of these codes may be
reported. `# allow: CODES`: these may be reported anywhere. Anything else reported fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from meshlab.analysis import Diagnostic, analyze_paths

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(p for p in CORPUS.iterdir() if p.is_dir())
_MARK = re.compile(r"#\s*(expect|expect-not|allow):\s*([A-Z0-9, ]+)\s*$")


@dataclass
class Expectations:
    at: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    never: set[str] = field(default_factory=set)
    allowed: set[str] = field(default_factory=set)

    @property
    def expected_codes(self) -> set[str]:
        return {code for codes in self.at.values() for code in codes}


def expectations(case: Path) -> Expectations:
    found = Expectations()
    for path in sorted(case.glob("*.yaml")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            mark = _MARK.search(line)
            if mark is None:
                continue
            codes = {c.strip() for c in mark.group(2).split(",") if c.strip()}
            if mark.group(1) == "expect":
                found.at.setdefault((path.name, number), set()).update(codes)
            elif mark.group(1) == "expect-not":
                found.never |= codes
            else:
                found.allowed |= codes
    return found


def diagnostics(case: Path) -> list[Diagnostic]:
    return analyze_paths([case]).diagnostics


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Path) -> None:
    expected = expectations(case)
    found = diagnostics(case)
    problems = []
    reported: dict[tuple[str, int], set[str]] = {}
    for d in found:
        assert d.location is not None, f"no location: {d}"
        reported.setdefault((d.location.path.name, d.location.line), set()).add(d.code)
    for (name, line), codes in expected.at.items():
        missing = codes - reported.get((name, line), set())
        if missing:
            problems.append(f"{name}:{line}: expected {', '.join(sorted(missing))}")
    for d in found:
        assert d.location is not None
        key = (d.location.path.name, d.location.line)
        if d.code in expected.never:
            problems.append(f"must not report {d.code}: {d}")
        elif d.code not in expected.at.get(key, set()) and d.code not in expected.allowed:
            problems.append(f"unexpected: {d}")
    listing = "\n".join(str(d) for d in found)
    assert not problems, "\n".join(problems) + "\n--- reported:\n" + listing
